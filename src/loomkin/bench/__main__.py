"""``python -m loomkin.bench``: the swarm makespan and runtime overhead benchmarks.

Commands (the JSON shapes are a contract other tools read; keep them stable)::

    python -m loomkin.bench swarm --workload PATH --agents N --strategy S [--seed K] --json
    python -m loomkin.bench swarm --all [--plot PATH]
    python -m loomkin.bench swarm --synthetic SHAPE [--size N] ...
    python -m loomkin.bench swarm --workload W --agents N --strategy speculative --hit-rate P
    python -m loomkin.bench speculation [--workload W ...] [--agents N ...] [--hit-rate P ...]
    python -m loomkin.bench swarm --workload W --strategy adaptive --max-agents 16 --spawn-cost-s 60
    python -m loomkin.bench adaptive [--json]   (adaptive vs fixed 16 on every workload, skew)
    python -m loomkin.bench overhead [--json]
    python -m loomkin.bench comms [--json]
    python -m loomkin.bench rebalancer [--json]
    python -m loomkin.bench control [--trials N] [--real-trials N] [--json]
    python -m loomkin.bench faults [--trials N] [--postgres-trials N] [--postgres-url URL] [--json]
    python -m loomkin.bench fuzz [--answers N] [--seed S] [--driver D] [--json]
    python -m loomkin.bench negotiation [--tasks N] [--agents N] [--seed S] [--json]
    python -m loomkin.bench cost [--scale S] [--window N] [--no-demo] [--json]
    python -m loomkin.bench web [--events N] [--small N] [--stream-s S] [--shots DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from loomkin.bench.graph import STRATEGIES
from loomkin.bench.speculation_cli import add_parser as add_speculation_parser
from loomkin.bench.speculation_cli import run_command as run_speculation_command
from loomkin.bench.web_cli import add_web_parser, run_web_command
from loomkin.bench.workloads import SHAPES, Shape, load_workload, synthetic, workload_paths
from loomkin.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from loomkin.bench.overhead_run import System
    from loomkin.bench.swarm import SwarmResult
    from loomkin.bench.workloads import Workload

_DEFAULT_PLOT = Path("benchmarks") / "swarm.png"
_EXTRAS = {
    "looptime": "bench",
    "autogen_core": "bench",
    "matplotlib": "bench",
    "playwright": "bench",
}
"""Optional packages a benchmark imports → the extra that installs them."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loomkin.bench", description=(__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    swarm = sub.add_parser("swarm", help="makespan of the real orchestrator in virtual time")
    source = swarm.add_mutually_exclusive_group(required=True)
    source.add_argument("--workload", help="workload file, or a name in the workloads folder")
    source.add_argument("--synthetic", choices=SHAPES, help="a generated workload shape")
    source.add_argument("--all", action="store_true", help="every workload × 4/8/16 agents")
    swarm.add_argument("--size", type=int, default=40, help="tasks of a synthetic workload")
    swarm.add_argument("--agents", type=int, default=8)
    swarm.add_argument(
        "--strategy", choices=(*STRATEGIES, "adaptive", "speculative"), default="self-organizing"
    )
    swarm.add_argument("--hit-rate", type=float, default=0.8, help="for --strategy speculative")
    swarm.add_argument(
        "--max-agents", type=int, default=None, help="adaptive: the ceiling (default --agents)"
    )
    swarm.add_argument(
        "--spawn-cost-s", type=float, default=60.0, help="adaptive: a new agent's onboarding"
    )
    swarm.add_argument("--seed", type=int, default=0)
    swarm.add_argument("--json", action="store_true", help="print one JSON object")
    swarm.add_argument("--plot", type=Path, default=_DEFAULT_PLOT, help="PNG path for --all")
    add_speculation_parser(sub)
    overhead = sub.add_parser("overhead", help="message, fan-out and scale overhead vs peers")
    overhead.add_argument("--json", action="store_true", help="print one JSON object")
    comms = sub.add_parser("comms", help="cross-team message delivery with 1/10/100 teams")
    comms.add_argument("--json", action="store_true", help="print one JSON object")
    rebalancer = sub.add_parser("rebalancer", help="loop/stuck detection FP/FN on a corpus")
    rebalancer.add_argument("--json", action="store_true", help="print one JSON object")
    control = sub.add_parser("control", help="pause/steer/cancel latency (virtual + real time)")
    control.add_argument("--trials", type=int, default=200, help="trials per case (virtual)")
    control.add_argument("--real-trials", type=int, default=20, help="trials per case (real)")
    control.add_argument("--json", action="store_true", help="print one JSON object")
    faults = sub.add_parser(
        "faults", help="SIGKILL and two-process fault injection (SQLite, Postgres)"
    )
    faults.add_argument("--trials", type=int, default=300, help="SQLite trials")
    faults.add_argument("--postgres-trials", type=int, default=0)
    faults.add_argument(
        "--postgres-url",
        default=os.environ.get("LOOMKIN_TEST_POSTGRES_URL"),
        help="server for the Postgres trials (default: $LOOMKIN_TEST_POSTGRES_URL)",
    )
    faults.add_argument("--json", action="store_true", help="print one JSON object")
    fuzz = sub.add_parser("fuzz", help="malformed model answers through the loop and the SDKs")
    fuzz.add_argument("--answers", type=int, default=2000, help="answers per driver")
    fuzz.add_argument("--seed", type=int, default=0)
    fuzz.add_argument(
        "--driver",
        choices=("loop", "openai", "anthropic", "all"),
        default="all",
        help="the fake model in the loop, or the openai/anthropic SDK over a local server",
    )
    fuzz.add_argument("--json", action="store_true", help="print one JSON object")
    failover = sub.add_parser("failover", help="SIGKILL workers of a cluster (NATS, Postgres)")
    failover.add_argument("--workers", type=int, default=3)
    failover.add_argument("--trials", type=int, default=50, help="worker kills")
    failover.add_argument(
        "--partitions", type=int, default=0, help="workers frozen (SIGSTOP) and thawed"
    )
    failover.add_argument(
        "--agent-kills",
        type=int,
        default=0,
        help="SIGKILL a worker mid-call of an agent hosted elsewhere, N times",
    )
    failover.add_argument("--lease-ttl", type=float, default=10.0)
    failover.add_argument("--bus", default="nats://127.0.0.1:4222")
    failover.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    failover.add_argument("--json", action="store_true", help="print one JSON object")
    negotiation = sub.add_parser("negotiation", help="a task set with and without negotiation")
    negotiation.add_argument("--tasks", type=int, default=48)
    negotiation.add_argument("--agents", type=int, default=4)
    negotiation.add_argument("--seed", type=int, default=0)
    negotiation.add_argument("--json", action="store_true", help="print one JSON object")
    adaptive = sub.add_parser("adaptive", help="autoscaler vs fixed team; skewed load stealing")
    adaptive.add_argument("--max-agents", type=int, default=16)
    adaptive.add_argument("--spawn-cost-s", type=float, default=60.0)
    adaptive.add_argument("--json", action="store_true", help="print one JSON object")
    adaptive.add_argument(
        "--plot", type=Path, default=Path("benchmarks") / "adaptive.png", help="PNG path"
    )
    cost = sub.add_parser("cost", help="tokens of a team vs one agent, with prompt caching")
    cost.add_argument("--scale", type=float, default=0.02, help="real s per model second")
    cost.add_argument("--window", type=int, default=128_000, help="context window (tokens)")
    cost.add_argument("--no-demo", action="store_true", help="skip the demo's figures")
    cost.add_argument("--json", action="store_true", help="print one JSON object")
    add_web_parser(sub)
    spawn = sub.add_parser("_spawn")  # internal: one scale figure in a fresh process
    spawn.add_argument("system", choices=("loomkin", "asyncio", "autogen"))
    spawn.add_argument("n", type=int)
    return parser


def _swarm_all(plot: Path) -> list[SwarmResult]:
    from loomkin.bench.report import plot_swarm, swarm_table
    from loomkin.bench.swarm import run_swarm

    results = [
        run_swarm(load_workload(path), agents=agents, strategy=strategy)
        for path in workload_paths()
        for agents in (4, 8, 16)
        for strategy in STRATEGIES
    ]
    print(swarm_table(results))
    print()
    print(plot_swarm(results, plot))
    return results


def _swarm(args: argparse.Namespace) -> None:
    from loomkin.bench.swarm import run_swarm

    if args.all:
        results = _swarm_all(args.plot)
        if args.json:
            print(json.dumps([r.to_json() for r in results]))
        return
    workload = (
        synthetic(cast("Shape", args.synthetic), size=args.size, seed=args.seed)
        if args.synthetic
        else load_workload(args.workload)
    )
    if args.strategy == "speculative":
        _speculative(workload, args)
        return
    strategy: str = args.strategy
    agents = args.agents
    if strategy == "adaptive" and args.max_agents is not None:
        agents = args.max_agents
    if agents < 1 or args.spawn_cost_s < 0:
        raise UserError("--agents/--max-agents must be at least 1 and --spawn-cost-s at least 0")
    result = run_swarm(
        workload, agents=agents, strategy=strategy, seed=args.seed, spawn_cost_s=args.spawn_cost_s
    )
    if args.json:
        print(result.dumps())
        return
    from loomkin.bench.report import swarm_table

    print(swarm_table([result]))


def _speculative(workload: Workload, args: argparse.Namespace) -> None:
    from loomkin.bench.speculation import run_speculation
    from loomkin.bench.speculation_cli import speculation_table

    if not 0.0 <= args.hit_rate <= 1.0:
        raise UserError(f"--hit-rate must be between 0 and 1, got {args.hit_rate}")
    result = run_speculation(workload, agents=args.agents, hit_rate=args.hit_rate, seed=args.seed)
    print(result.dumps() if args.json else speculation_table([result]))


def _overhead(args: argparse.Namespace) -> None:
    from loomkin.bench.overhead_run import run_overhead
    from loomkin.bench.report import overhead_table

    result = run_overhead()
    print(json.dumps(result) if args.json else overhead_table(result))


def _measures(args: argparse.Namespace) -> None:
    """The issue #4 measures: control latency and fault injection."""
    if args.command == "control":
        from loomkin.bench.control import ControlConfig, control_table, run_control

        config = ControlConfig(trials=args.trials, real_trials=args.real_trials)
        control = run_control(config)
        print(json.dumps(control) if args.json else control_table(control))
        return
    from loomkin.bench.faults import faults_table, run_faults

    faults = run_faults(
        trials=args.trials, postgres_trials=args.postgres_trials, postgres_url=args.postgres_url
    )
    print(json.dumps(faults) if args.json else faults_table(faults))


def _fuzz(args: argparse.Namespace) -> None:
    from loomkin.bench.fuzz import DRIVERS, fuzz_table, run_fuzz

    if args.answers < 1:
        raise UserError(f"--answers must be at least 1, got {args.answers}")
    drivers = DRIVERS if args.driver == "all" else (args.driver,)
    report = run_fuzz(args.answers, args.seed, drivers)
    print(json.dumps(report) if args.json else fuzz_table(report))


def _negotiation(args: argparse.Namespace) -> None:
    from loomkin.bench.negotiation import negotiation_table, run_negotiation

    if args.tasks < 1:
        raise UserError(f"--tasks must be at least 1, got {args.tasks}")
    if args.agents < 1:
        raise UserError(f"--agents must be at least 1, got {args.agents}")
    report = run_negotiation(tasks=args.tasks, agents=args.agents, seed=args.seed)
    print(json.dumps(report) if args.json else negotiation_table(report))


def _cost(args: argparse.Namespace) -> None:
    """Issue #22: tokens of a team vs one agent, with prompt caching."""
    from loomkin.bench.cost import cost_table, run_cost

    if args.scale <= 0 or args.window < 1000:
        raise UserError("--scale must be positive and --window at least 1000 tokens")
    report = run_cost(scale=args.scale, window=args.window, demo=not args.no_demo)
    print(json.dumps(report) if args.json else cost_table(report))


def _adaptive(args: argparse.Namespace) -> None:
    """Issue 16: the autoscaler against a fixed team, and the skewed-load scenario."""
    from loomkin.bench.adaptive import adaptive_table, plot_adaptive, run_adaptive

    if args.max_agents < 1 or args.spawn_cost_s < 0:
        raise UserError("--max-agents must be at least 1 and --spawn-cost-s at least 0")
    report = run_adaptive(args.max_agents, args.spawn_cost_s)
    print(json.dumps(report) if args.json else adaptive_table(report))
    if not args.json:
        print(plot_adaptive(report, args.plot))


def _failover(args: argparse.Namespace) -> None:
    from loomkin.bench.failover import failover_table, run_failover

    if args.workers < 2 or min(args.trials, args.partitions, args.agent_kills) < 0:
        raise UserError(
            "failover needs --workers >= 2 and --trials, --partitions, --agent-kills >= 0"
        )
    if args.trials + args.agent_kills < 1:
        raise UserError("failover needs --trials >= 1 or --agent-kills >= 1")
    report = run_failover(
        workers=args.workers,
        trials=args.trials,
        partitions=args.partitions,
        agent_kills=args.agent_kills,
        ttl=args.lease_ttl,
        bus=args.bus,
        postgres=args.postgres,
    )
    print(json.dumps(report) if args.json else failover_table(report))


def _web_or_spawn(args: argparse.Namespace) -> None:
    """``web`` (its own module), or the internal ``_spawn`` of the overhead benchmark."""
    if args.command == "web":
        run_web_command(args)
        return
    from loomkin.bench.overhead_run import spawn_figures

    system = cast("System", args.system)
    print(json.dumps(asyncio.run(spawn_figures(system, args.n))))


_SIMPLE: dict[str, Callable[[argparse.Namespace], None]] = {
    "fuzz": _fuzz,
    "failover": _failover,
    "speculation": run_speculation_command,
    "negotiation": _negotiation,
    "adaptive": _adaptive,
    "cost": _cost,
}
"""Commands that are one call with the parsed arguments."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "swarm":
            _swarm(args)
        elif args.command == "overhead":
            _overhead(args)
        elif args.command == "rebalancer":
            from loomkin.bench.rebalancer import main as rebalancer_main

            rebalancer_main(as_json=args.json)
        elif args.command == "comms":
            from loomkin.bench.comms import comms_table, run_comms

            result = run_comms()
            print(json.dumps(result) if args.json else comms_table(result))
        elif args.command in ("control", "faults"):
            _measures(args)
        elif args.command in _SIMPLE:
            _SIMPLE[args.command](args)
        else:
            _web_or_spawn(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # An optional package of an extra: say what to install, in one line. Any other
        # missing module is a broken install or a bug, and keeps its traceback.
        hint = missing_extra(exc, args.command)
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        return 2
    return 0


def missing_extra(exc: ModuleNotFoundError, command: str) -> str | None:
    """The one-line hint for a benchmark whose optional package is not installed, if it is one."""
    package = (exc.name or "").partition(".")[0]
    extra = _EXTRAS.get(package)
    if extra is None:
        return None
    return (
        f"python -m loomkin.bench {command} needs {package!r}, which is not installed: "
        f"pip install 'loomkin[{extra}]'"
    )


if __name__ == "__main__":
    sys.exit(main())
