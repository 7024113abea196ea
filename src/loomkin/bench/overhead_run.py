"""The overhead driver: every figure for Loomkin, plain asyncio and autogen-core, in one run.

The message and fan-out figures are taken in this process, system after system. The scale
figures (spawn time, memory per idle agent) are each taken in a fresh child process
(``python -m loomkin.bench _spawn SYSTEM N``): RSS only grows when the allocator needs new
pages, so in a process that already freed memory the delta would read near zero.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from loomkin.bench import overhead, peers
from loomkin.bench.overhead import Figures, OverheadConfig
from loomkin.bench.startup import startup_cpu

__all__ = ["OverheadResult", "System", "autogen_available", "run_overhead", "spawn_figures"]

System = Literal["loomkin", "asyncio", "autogen"]
OverheadResult = dict[str, float | dict[str, float | None] | list[str] | str | None]
"""The JSON object printed by ``python -m loomkin.bench overhead --json``.

``startup_cpu_s`` holds the start-up row: CPU seconds of a bare interpreter (``python``),
of ``import loomkin.cli.main`` (``import_cli``) and of ``loomkin --help``
(``loomkin_help``), each the median of ``startup_repeats`` runs."""


def autogen_available() -> bool:
    """True when autogen-core can be imported (the optional ``bench`` extra)."""
    try:
        import autogen_core  # noqa: F401
    except ImportError:
        return False
    return True


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


async def spawn_figures(system: System, n: int) -> Figures:
    """Spawn ``n`` idle agents of ``system`` in this process; seconds and bytes per agent."""
    if system == "loomkin":
        return await overhead.loomkin_spawn(n)
    if system == "asyncio":
        return await peers.asyncio_spawn(n)
    from loomkin.bench import peers_autogen

    return await peers_autogen.autogen_spawn(n)


def _spawn_in_child(system: System, n: int) -> Figures:
    out = subprocess.run(
        [sys.executable, "-m", "loomkin.bench", "_spawn", system, str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: Figures = json.loads(out.stdout)
    return figures


async def _messages(config: OverheadConfig, system: System) -> Figures:
    if system == "loomkin":
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = await overhead.loomkin_logged_oneway(
                config.logged_messages, str(Path(tmp) / "bench.db")
            )
        return {
            "oneway_msgs_per_s": await overhead.loomkin_oneway(config.messages),
            **await overhead.loomkin_rpc(config.rpcs),
            "memlog_oneway_msgs_per_s": await overhead.loomkin_logged_oneway(
                config.logged_messages, "memory:"
            ),
            "sqlite_oneway_msgs_per_s": sqlite,
        }
    if system == "asyncio":
        return {
            "oneway_msgs_per_s": await peers.asyncio_oneway(config.messages),
            **await peers.asyncio_rpc(config.rpcs),
        }
    from loomkin.bench import peers_autogen

    return {
        "oneway_msgs_per_s": await peers_autogen.autogen_oneway(config.messages // 5),
        **await peers_autogen.autogen_rpc(config.rpcs // 4),
    }


async def _fanout(config: OverheadConfig, system: System) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in config.fanout_ks:
        if system == "loomkin":
            ms = await overhead.loomkin_fanout(k, config.fanout_rounds, config.sleep_s)
        elif system == "asyncio":
            ms = await peers.asyncio_fanout(k, config.fanout_rounds, config.sleep_s)
        else:
            from loomkin.bench import peers_autogen

            ms = await peers_autogen.autogen_fanout(k, config.fanout_rounds, config.sleep_s)
        out[str(k)] = ms
    return out


def _system(config: OverheadConfig, system: System, *, in_child: bool) -> OverheadResult:
    figures: OverheadResult = dict(asyncio.run(_messages(config, system)))
    figures["fanout_overhead_ms"] = asyncio.run(_fanout(config, system))
    for n in config.agent_counts:
        spawn = _spawn_in_child(system, n) if in_child else asyncio.run(spawn_figures(system, n))
        figures[f"spawn_s_{_label(n)}"] = spawn["spawn_s"]
        figures[f"bytes_per_idle_agent_{_label(n)}"] = spawn["bytes_per_idle_agent"]
    return figures


def _ratio(ours: object, base: object) -> float | None:
    if isinstance(ours, float | int) and isinstance(base, float | int) and base:
        return round(float(ours) / float(base), 3)
    return None


def _ratios(result: OverheadResult, prefix: str) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    for key, value in list(result.items()):
        if key.startswith(("asyncio_", "autogen_", "ratio")) or f"{prefix}{key}" not in result:
            continue
        base = result[f"{prefix}{key}"]
        if isinstance(value, dict):  # one ratio per entry, null ones too when the peer is absent
            peer = base if isinstance(base, dict) else {}
            for k, v in value.items():
                ratios[f"{key}[{k}]"] = _ratio(v, peer.get(k))
        else:
            ratios[key] = _ratio(value, base)
    return ratios


def run_overhead(config: OverheadConfig | None = None, *, in_child: bool = True) -> OverheadResult:
    """Measure Loomkin, asyncio and (if installed) autogen-core; return the JSON object.

    Args:
        config: Sizes (defaults: the published run).
        in_child: Take the spawn/memory figures in fresh child processes (False in tests).
    """
    cfg = config or OverheadConfig()
    result: OverheadResult = _system(cfg, "loomkin", in_child=in_child)
    baseline = _system(cfg, "asyncio", in_child=in_child)
    result.update({f"asyncio_{k}": v for k, v in baseline.items()})
    notes: list[str] = []
    if autogen_available():
        peer = _system(cfg, "autogen", in_child=in_child)
        result.update({f"autogen_{k}": v for k, v in peer.items()})
    else:
        result.update({f"autogen_{k}": None for k in baseline})
        notes.append("autogen-core is not installed (uv sync --extra bench): autogen_* are null")
    result["ratio_vs_asyncio"] = _ratios(result, "asyncio_")
    result["ratio_vs_autogen"] = _ratios(result, "autogen_")
    # Not a peer comparison (no asyncio_/autogen_ twin, so no ratio): beside a bare
    # interpreter, what a CLI command pays before it does anything.
    result["startup_cpu_s"] = dict(startup_cpu(cfg.startup_repeats))
    result["notes"] = notes
    return result
