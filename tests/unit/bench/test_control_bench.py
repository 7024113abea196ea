"""The control-latency benchmark's JSON contract, on a tiny virtual-time run (no timing)."""

from __future__ import annotations

import json

import pytest

from loomkin.bench.__main__ import main
from loomkin.bench.control import ControlConfig, control_table, run_control
from loomkin.errors import UserError

CASES = (
    "pause_asap_stream",
    "cancel_stream",
    "steer",
    "steer_final",
    "pause_tool_asap",
    "pause_tool_at_boundary",
)
TINY = ControlConfig(trials=3, real_trials=0, steer_final_trials=1, lost_after_s=0.5)


def test_every_case_reports_its_figures_with_the_documented_types() -> None:
    result = run_control(TINY)
    assert result["trials"] == 3
    assert result["real_trials"] == 0
    assert result["chunk_delay_ms"] == 50.0
    assert result["tool_ms"] == 200.0
    assert isinstance(result["wall_s"], float)
    for case in CASES:
        assert result[f"{case}_n"] == (1 if case == "steer_final" else 3)
        missed = result[f"{case}_missed"]
        assert isinstance(missed, int)
        assert 0 <= missed <= 3
        figures = [result[f"{case}_{q}_ms"] for q in ("p50", "p99", "max")]
        assert all(f is None or isinstance(f, float) for f in figures)
        present = [f for f in figures if isinstance(f, float)]
        assert present == sorted(present)
        per = "chunk" if "stream" in case or "steer" in case else "tool"
        assert f"{case}_p99_per_{per}" in result
    assert not any(k.startswith("real_") for k in result if k != "real_trials")
    json.dumps(result, allow_nan=False)  # plain JSON: a missed trial is null, never inf
    table = control_table(result)
    assert all(case in table for case in CASES)


def test_pause_and_cancel_during_a_stream_land_at_the_stream_checkpoint() -> None:
    result = run_control(TINY)
    assert result["pause_asap_stream_missed"] == 0
    assert result["cancel_stream_missed"] == 0
    assert result["pause_tool_asap_missed"] == 0
    assert result["pause_tool_at_boundary_missed"] == 0
    assert result["steer_missed"] == 0


def test_the_command_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["control", "--trials", "2", "--real-trials", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pause_asap_stream_n"] == 2


def test_bad_sizes_are_refused_with_a_clear_error() -> None:
    with pytest.raises(UserError, match="trials"):
        ControlConfig(trials=0)
    with pytest.raises(UserError, match="chunks"):
        ControlConfig(chunks=2)
