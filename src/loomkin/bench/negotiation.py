"""``python -m loomkin.bench negotiation``: the same task set with and without negotiation.

How this works and why:

* **The team** (:mod:`loomkin.bench.negotiation_team`): one agent per task type, each strong
  at its type only; outside it a task costs 3× the model calls and fails 30 % of the time.
  The scheduler's capability estimate starts uninformed, so its first assignments are
  guesses. With negotiation on, a misassigned agent counter-proposes the specialist.
* **Everything else is real**: the runtime on the in-memory store, the scheduler, the task
  board, the negotiation book, the loop and the tools, in virtual time (``looptime``). A
  failed task is put back on the board (``failed`` → ``pending``) by the benchmark, as a lead
  would retry it, and the scheduler assigns it again.
* **Figures**, per run: makespan (first spawn → last completion, virtual seconds); wasted
  model calls (work calls beyond the one a specialist needs per task: the surplus of misfit
  attempts and every call of a failed one); failed attempts; misassignments (assignments to
  an agent outside its strength); negotiation calls (the counter-proposals and the reply
  that ends the turn after a hand-over) per assignment; negotiation latency (assignment →
  resolution of the negotiations that moved a task). The two runs share the task set and
  the seed; the ratios compare them.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import looptime

from loomkin.agents import SessionSettings
from loomkin.bench.negotiation_team import TITLES, Team, TeamConfig
from loomkin.coordination import RebalancerSettings
from loomkin.coordination.negotiation import NegotiationSettings
from loomkin.core.events import (
    AgentSpawned,
    NegotiationCountered,
    NegotiationResolved,
    TaskAssigned,
    TaskCreated,
    TaskStatusChanged,
)
from loomkin.core.scheduling import infer_task_type
from loomkin.ids import TaskId
from loomkin.service import Loomkin
from loomkin.testing.internals import task_service

if TYPE_CHECKING:
    from loomkin.core.events import RecordedEvent
    from loomkin.service import Session

__all__ = ["NegotiationRun", "negotiation_table", "run_negotiation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationRun:
    """The figures of one run (with or without negotiation)."""

    negotiation: bool
    tasks: int
    completed: int
    makespan_s: float
    model_calls: int
    work_calls: int
    wasted_calls: int
    failed_attempts: int
    misassignments: int
    assignments: int
    negotiation_calls: int
    negotiation_calls_per_assignment: float
    negotiations_moved: int
    negotiation_latency_s: float
    """Mean virtual seconds from an assignment to the resolution that moved it."""
    events: int


def _task_titles(tasks: int, config: TeamConfig) -> list[str]:
    draw = random.Random(f"negotiation-tasks:{config.seed}")
    return [TITLES[draw.choice(config.strengths)].format(n=n) for n in range(tasks)]


async def _requeue_failed(session: Session, lk: Loomkin) -> None:
    """Put every failed task back on the board (a lead retrying it), as it fails."""
    tasks = task_service(lk)
    async for recorded in session.events(after=0):
        event = recorded.event
        if isinstance(event, TaskStatusChanged) and event.status == "failed":
            await tasks.set_status(
                TaskId(event.task_id), "pending", note="retried after a failed attempt"
            )


async def _run(titles: list[str], config: TeamConfig) -> tuple[NegotiationRun, Team]:
    team = Team(config)
    settings = SessionSettings(
        bootstrap_orienter=False,
        max_agents_per_team=max(8, len(config.strengths)),
        max_iterations=30,
        # One model call stands for a minute of work: a rebalancer tuned for real calls
        # would call that "stuck", and the idle timeout would cut the silent stream.
        rebalancer=RebalancerSettings(stuck_after_s=100 * config.work_s, check_every_s=1e6),
        stream_idle_timeout_s=100 * config.work_s,
        negotiation=NegotiationSettings(enabled=config.negotiate),
    )
    with tempfile.TemporaryDirectory() as project:
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(project, model_factory=team.factory, settings=settings)
            for title in titles:
                await session.create_task(title)
            watcher = asyncio.create_task(_requeue_failed(session, lk))
            try:
                for name in team.names():
                    await session.spawn_agent(name, "coder")
                for _ in range(10 * len(titles)):
                    await session.wait_idle()
                    await asyncio.sleep(1.0)  # let the watcher requeue what just failed
                    if all(t.status == "completed" for t in session.tasks()):
                        break
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            history = await session.history()
    return _figures(history, team, config, len(titles)), team


def _figures(
    history: list[RecordedEvent], team: Team, config: TeamConfig, tasks: int
) -> NegotiationRun:
    titles: dict[str, str] = {}
    assigned_at: dict[str, float] = {}
    misassigned = assignments = moved = 0
    latencies: list[float] = []
    countered: set[str] = set()
    spawns: list[float] = []
    done: list[float] = []
    for rec in history:
        event = rec.event
        match event:
            case AgentSpawned():
                spawns.append(rec.recorded_at)
            case TaskCreated():
                titles[event.task_id] = event.title
            case TaskAssigned():
                assignments += 1
                assigned_at[event.task_id] = rec.recorded_at
                if infer_task_type(titles[event.task_id]) != team.strength(event.owner_name):
                    misassigned += 1
            case NegotiationCountered():
                countered.add(event.negotiation_id)
            case NegotiationResolved(outcome="reassigned") if event.negotiation_id in countered:
                moved += 1
                latencies.append(rec.recorded_at - assigned_at.get(event.task_id, rec.recorded_at))
            case TaskStatusChanged(status="completed"):
                done.append(rec.recorded_at)
            case _:
                pass
    counts = team.counters.values()
    work = sum(c.work for c in counts)
    negotiation_calls = sum(c.negotiation for c in counts)
    start = min(spawns, default=0.0)
    return NegotiationRun(
        negotiation=config.negotiate,
        tasks=tasks,
        completed=len(done),
        makespan_s=round(max(done, default=start) - start, 3),
        model_calls=work + negotiation_calls + sum(c.closing for c in counts),
        work_calls=work,
        wasted_calls=work - len(done),
        failed_attempts=sum(c.failed_attempts for c in counts),
        misassignments=misassigned,
        assignments=assignments,
        negotiation_calls=negotiation_calls,
        negotiation_calls_per_assignment=round(negotiation_calls / max(1, assignments), 3),
        negotiations_moved=moved,
        negotiation_latency_s=round(sum(latencies) / len(latencies), 3) if latencies else 0.0,
        events=len(history),
    )


def run_negotiation(*, tasks: int = 48, agents: int = 4, seed: int = 0) -> dict[str, object]:
    """Run the task set without, then with negotiation (one process, same seed).

    ``agents``: the team's size; strengths go round the four task types (coding, testing,
    documentation, research), so a team of 8 has two specialists of each.
    """
    kinds = TeamConfig().strengths
    strengths = tuple(kinds[i % len(kinds)] for i in range(agents))
    started = time.perf_counter()
    runs: dict[str, NegotiationRun] = {}
    for negotiate in (False, True):
        config = TeamConfig(strengths=strengths, negotiate=negotiate, seed=seed)
        titles = _task_titles(tasks, config)
        loop = looptime.new_event_loop()
        try:
            run, _team = loop.run_until_complete(_run(titles, config))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        runs["with" if negotiate else "without"] = run
    off, on = runs["without"], runs["with"]
    wasted = on.wasted_calls / off.wasted_calls if off.wasted_calls else 0.0
    makespan = on.makespan_s / off.makespan_s if off.makespan_s else 0.0
    # Counted the strict way too: negotiation calls as waste (they do no work on a task).
    overhead = on.wasted_calls + on.negotiation_calls
    strict = overhead / off.wasted_calls if off.wasted_calls else 0.0
    return {
        "tasks": tasks,
        "agents": agents,
        "seed": seed,
        "without": asdict(off),
        "with": asdict(on),
        "wasted_ratio": round(wasted, 3),
        "makespan_ratio": round(makespan, 3),
        "wasted_with_negotiation_calls_ratio": round(strict, 3),
        "goals": {
            "wasted_at_most_half": wasted <= 0.5,
            "makespan_no_worse": makespan <= 1.0,
            "at_most_one_extra_call_per_assignment": on.negotiation_calls_per_assignment <= 1.0,
            "all_completed": off.completed == on.completed == tasks,
        },
        "wall_s": round(time.perf_counter() - started, 3),
    }


def negotiation_table(report: dict[str, object]) -> str:
    """The report as a readable table."""
    off, on = report["without"], report["with"]
    assert isinstance(off, dict)
    assert isinstance(on, dict)
    rows = [
        ("makespan (virtual s)", "makespan_s"),
        ("model calls", "model_calls"),
        ("wasted model calls", "wasted_calls"),
        ("failed attempts", "failed_attempts"),
        ("misassignments", "misassignments"),
        ("assignments", "assignments"),
        ("negotiation calls", "negotiation_calls"),
        ("negotiation calls / assignment", "negotiation_calls_per_assignment"),
        ("negotiations that moved a task", "negotiations_moved"),
        ("negotiation latency (virtual s)", "negotiation_latency_s"),
        ("tasks completed", "completed"),
    ]
    lines = [f"{'':34} {'without':>10} {'with':>10}"]
    lines += [f"{label:34} {off[key]!s:>10} {on[key]!s:>10}" for label, key in rows]
    lines.append(
        f"wasted ratio {report['wasted_ratio']} (with negotiation calls counted as waste: "
        f"{report['wasted_with_negotiation_calls_ratio']}), makespan ratio "
        f"{report['makespan_ratio']}; "
        f"goals: {report['goals']}"
    )
    return "\n".join(lines)
