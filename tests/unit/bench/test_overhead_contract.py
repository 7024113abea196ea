"""The overhead benchmark's JSON contract (``overhead --json``), on a tiny configuration."""

from __future__ import annotations

import json
import sys

import pytest

from loomkin.bench.overhead import OverheadConfig
from loomkin.bench.overhead_run import OverheadResult, autogen_available, run_overhead
from loomkin.bench.report import overhead_table
from loomkin.bench.startup import STARTUP_FIGURES, child_cpu_s, loomkin_command

TINY = OverheadConfig(
    messages=500,
    rpcs=100,
    logged_messages=100,
    fanout_ks=(2, 3),
    fanout_rounds=1,
    sleep_s=0.001,
    agent_counts=(5,),
    startup_repeats=1,
)
FLAT = (
    "oneway_msgs_per_s",
    "rpc_per_s",
    "rpc_p50_us",
    "rpc_p99_us",
    "spawn_s_5",
    "bytes_per_idle_agent_5",
)
LOOMKIN_ONLY = ("memlog_oneway_msgs_per_s", "sqlite_oneway_msgs_per_s")


@pytest.fixture(scope="module")
def result() -> OverheadResult:
    """One tiny run shared by the tests of this module (a run takes about a second)."""
    return run_overhead(TINY, in_child=False)


def test_overhead_json_has_every_figure_for_every_system(result: OverheadResult) -> None:
    json.dumps(result, allow_nan=False)
    peers = ("", "asyncio_", "autogen_") if autogen_available() else ("", "asyncio_")
    for prefix in peers:
        for key in FLAT:
            assert isinstance(result[f"{prefix}{key}"], float | int), (prefix, key)
        fanout = result[f"{prefix}fanout_overhead_ms"]
        assert isinstance(fanout, dict)
        assert set(fanout) == {"2", "3"}
        assert all(isinstance(v, float) for v in fanout.values())
    for key in LOOMKIN_ONLY:
        assert isinstance(result[key], float)
        assert f"asyncio_{key}" not in result
    if not autogen_available():
        assert all(result[f"autogen_{k}"] is None for k in FLAT)
    assert isinstance(result["notes"], list)
    assert all(isinstance(n, str) for n in result["notes"])


def test_ratios_pair_each_figure_with_its_peer(result: OverheadResult) -> None:
    for name in ("ratio_vs_asyncio", "ratio_vs_autogen"):
        ratios = result[name]
        assert isinstance(ratios, dict)
        assert {*FLAT, "fanout_overhead_ms[2]", "fanout_overhead_ms[3]"} <= set(ratios)
        assert all(v is None or isinstance(v, float) for v in ratios.values())
        assert not set(LOOMKIN_ONLY) & set(ratios)
    ratios = result["ratio_vs_asyncio"]
    assert isinstance(ratios, dict)
    assert isinstance(ratios["oneway_msgs_per_s"], float)
    assert isinstance(ratios["rpc_per_s"], float)


def test_the_table_shows_the_fanout_rows_of_the_run(result: OverheadResult) -> None:
    table = overhead_table(result)
    assert "fan-out K=2, over 50 ms" in table
    assert "| one-way messages | msg/s |" in table


def test_the_startup_row_sits_beside_a_bare_interpreter(result: OverheadResult) -> None:
    startup = result["startup_cpu_s"]
    assert isinstance(startup, dict)
    assert tuple(startup) == STARTUP_FIGURES
    assert all(isinstance(v, float) and v > 0 for v in startup.values())
    python, import_cli = startup["python"], startup["import_cli"]
    assert isinstance(python, float)
    assert isinstance(import_cli, float)
    assert python < import_cli  # importing Loomkin costs more than an empty interpreter
    ratios = result["ratio_vs_asyncio"]
    assert isinstance(ratios, dict)
    assert "startup_cpu_s" not in ratios
    table = overhead_table(result)
    assert "| start-up | bare python | import loomkin.cli.main | loomkin --help |" in table
    assert f"| CPU s (median) | {python:.3f} | {import_cli:.3f} |" in table


def test_child_cpu_is_measured_not_wall_time() -> None:
    # A child that sleeps uses almost no CPU; one that spins uses about what it spins.
    idle = child_cpu_s([sys.executable, "-c", "import time; time.sleep(0.3)"])
    busy = child_cpu_s(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass",
        ]
    )
    assert idle < 0.25 < busy


def test_the_help_command_is_the_console_script_or_the_module() -> None:
    command = loomkin_command()
    assert command[-1].endswith("loomkin") or command[-2:] == ["-m", "loomkin.cli"]
