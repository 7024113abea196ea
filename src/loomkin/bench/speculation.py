"""The speculation benchmark: the real orchestrator with speculation on idle capacity.

How this works and why:

* **The swarm benchmark, plus speculation.** Same runtime, workload, agents and virtual time
  as :mod:`loomkin.bench.swarm` (``self-organizing`` edges, milestones honoured), with
  ``[speculation] auto = true``: after every scheduling round, the real idle-capacity policy
  may start a waiting task on an idle agent, the real service validates it when the blocker
  reaches the edge (milestone or completion), then merges or discards and re-queues it.
* **The hit rate is drawn, the policy is not told.** Every blocker announces
  ``interface: v1`` (in its milestone note, its partial output and its hand-off). An agent
  that speculates states one structured assumption with ``assumption_add``: ``interface =
  v1`` with probability ``P`` (drawn per workload, seed and task: a task name two workloads
  share, such as ``integrate``, draws independently in each), else a wrong value. Whether it
  holds is decided by the real exact comparison; the policy learns P only from those
  outcomes (its Beta-Binomial posterior), so at a low P it must learn to stop.
* **Workspaces are virtual here.** The bench's agents write no files, and a workspace copy
  run on a worker thread would let the virtual clock jump while it runs (the figures would
  depend on the machine). :class:`VirtualWorkspaces` keeps the workspace calls (create,
  merge, remove) but touches no disk; the git and overlay workspaces are exercised by the
  integration tests.
* **Side by side.** Each figure runs the non-speculative self-organizing baseline and the
  speculative run on the same workload and agent count in one process; the ratio is what
  ``benchmarks/RESULTS.md`` records. ``waste_fraction`` = work thrown away ÷ all work done.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import looptime

from loomkin.agents import SessionSettings
from loomkin.bench.graph import strategy_deps
from loomkin.bench.swarm import WorkModel, _agent_roles, _groups, _put_on_board, _Tally
from loomkin.coordination import RebalancerSettings
from loomkin.coordination.speculation import MergeResult, Workspace, Workspaces
from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import SpeculationDiscarded, SpeculationMerged
from loomkin.core.speculation import SpeculationPolicy
from loomkin.ids import TaskId
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.bench.workloads import TaskSpec, Workload
    from loomkin.llm.model import Model, ModelRequest

__all__ = ["SpeculationResult", "VirtualWorkspaces", "run_speculation", "run_speculation_pair"]

_BRIEF = re.compile(r"^\[Task assigned\] .* \(task id (?P<task_id>\S+?), ")
VALUE = "v1"
"""What every blocker announces as its ``interface``."""


class VirtualWorkspaces(Workspaces):
    """Workspaces with no files (the bench's agents write none; see the module docs)."""

    def __init__(self) -> None:
        super().__init__(Path(tempfile.gettempdir()))
        self.live: set[str] = set()

    async def create(self, name: str) -> Workspace:
        self.live.add(name)
        return Workspace(path=self.path_for(name), kind="overlay")

    async def merge(self, ws: Workspace, message: str) -> MergeResult:
        return MergeResult()

    async def remove(self, ws_path: Path, branch: str = "") -> None:
        self.live.discard(ws_path.name)

    def exists(self, ws_path: Path) -> bool:
        return ws_path.name in self.live

    async def sweep(self, keep: set[str]) -> list[str]:
        gone = sorted(self.live - keep)
        self.live &= keep
        return gone


def _holds(workload: str, seed: int, task: str, p: float) -> bool:
    """Whether the speculation on ``task`` guesses right (deterministic per seed).

    Keyed by the workload too: keyed by seed and task alone, a task every workload has (the
    final ``integrate``) would draw the same value in all of them, so one unlucky draw would
    miss everywhere at once and the workloads' figures would not be independent samples.
    """
    key = json.dumps([workload, seed, task])
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < p


class SpeculativeWorkModel(WorkModel):
    """The swarm's work model, which also states an assumption when it speculates."""

    def __init__(
        self, tasks: dict[TaskId, TaskSpec], *, workload: str, hit_rate: float, seed: int
    ) -> None:
        super().__init__(tasks)
        self._workload = workload
        self._p = hit_rate
        self._seed = seed

    def _step(self, request: ModelRequest) -> tuple[float, list[tuple[str, dict[str, str]]], str]:
        brief, answered = _brief(request)
        match = _BRIEF.match(brief) if brief else None
        task_id = TaskId(match["task_id"]) if match else None
        spec = self._tasks.get(task_id) if task_id is not None else None
        if spec is None or task_id is None or brief is None:
            return 0.0, [], "Nothing to do."
        speculative = "[Speculative]" in brief
        if speculative and answered == 0:
            held = _holds(self._workload, self._seed, spec.id, self._p)
            value = VALUE if held else "v0"
            args = {"task_id": str(task_id), "key": "interface", "value": value}
            return 0.0, [("assumption_add", args)], ""
        step = answered - 1 if speculative else answered
        groups = _groups(spec)
        done = groups[step - 1][0] if 0 < step <= len(groups) else 0.0
        if step < len(groups):
            fraction, calls = groups[step]
            noted = [_announce(name, a) for name, a in calls]
            return (fraction - done) * spec.work_s, noted, ""
        if step == len(groups):
            result = {
                "result": f"{spec.id} done",
                "task_id": str(task_id),
                "decisions": [f"interface: {VALUE}"],
            }
            return (1.0 - done) * spec.work_s, [("task_complete", result)], ""  # type: ignore[list-item]
        return 0.0, [], f"{spec.id} is complete."


def _announce(name: str, args: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A milestone's note and a partial chunk's content both state the interface."""
    if name == "emit_milestone":
        return name, {**args, "note": f"interface: {VALUE}"}
    if name == "publish_partial":
        return name, {**args, "content": f"{args['content']}\ninterface: {VALUE}"}
    return name, args


def _brief(request: ModelRequest) -> tuple[str | None, int]:
    answered = 0
    for message in reversed(request.messages):
        if isinstance(message, AssistantMessage):
            answered += 1
        elif isinstance(message, UserMessage) and message.text.startswith("[Task assigned]"):
            return message.text, answered
    return None, answered


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationResult:
    """One speculative run beside its non-speculative baseline."""

    workload: str
    agents: int
    hit_rate: float
    seed: int
    makespan_s: float
    baseline_makespan_s: float
    ratio_to_baseline: float
    waste_fraction: float
    speculations: int
    speculations_held: int
    speculations_failed: int
    merged: int
    discarded: int
    tasks_completed: int
    tasks_total: int
    wall_s: float

    def to_json(self) -> dict[str, str | int | float]:
        """The result as a flat JSON object."""
        return asdict(self)

    def dumps(self) -> str:
        """The result as one line of JSON."""
        return json.dumps(self.to_json())


def _settings(workload: Workload, agents: int, *, speculate: bool) -> SessionSettings:
    longest = max(t.work_s for t in workload.tasks)
    groups = max(len(_groups(t)) for t in workload.tasks)
    return SessionSettings(
        max_agents_per_team=max(agents, 8),
        max_iterations=max(30, groups + 12),
        bootstrap_orienter=False,
        rebalancer=RebalancerSettings(stuck_after_s=10 * longest, check_every_s=longest),
        stream_idle_timeout_s=10 * longest,
        speculation=SpeculationPolicy(auto=speculate, max_active=max(1, agents // 2)),
    )


async def _run(
    workload: Workload, *, agents: int, hit_rate: float, seed: int, speculate: bool
) -> tuple[_Tally, dict[str, float]]:
    deps = strategy_deps(workload, "self-organizing")
    specs: dict[TaskId, TaskSpec] = {}

    def factory(_role: Role, _name: str) -> Model:
        return SpeculativeWorkModel(specs, workload=workload.name, hit_rate=hit_rate, seed=seed)

    settings = _settings(workload, agents, speculate=speculate)
    with tempfile.TemporaryDirectory() as project:
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(project, model_factory=factory, settings=settings)
            service = session_runtime(session).coordination.speculation
            service.use_workspaces(VirtualWorkspaces())
            specs.update(await _put_on_board(session, workload, deps))
            for i, role in enumerate(_agent_roles(workload, agents)):
                await session.spawn_agent(f"agent{i:03d}", role)
            await session.wait_idle()
            history = await session.history()
    # Per speculation: held = its assumptions held and it merged; failed = an assumption
    # (or the merge) failed; preempted or cancelled ones are neither. Waste counts them all.
    counts = {"held": 0.0, "failed": 0.0, "merged": 0.0, "discarded": 0.0, "wasted_s": 0.0}
    for r in history:
        match r.event:
            case SpeculationMerged():
                counts["merged"] += 1
                counts["held"] += 1
            case SpeculationDiscarded(wasted_s=wasted, reason=reason):
                counts["discarded"] += 1
                counts["wasted_s"] += wasted
                if reason in ("assumption_failed", "merge_conflict"):
                    counts["failed"] += 1
            case _:
                pass
    return _Tally.of(history), counts


async def run_speculation_pair(
    workload: Workload, *, agents: int, hit_rate: float, seed: int = 0
) -> SpeculationResult:
    """The baseline and the speculative run, on the running (virtual-time) loop."""
    started = time.perf_counter()
    base, _ = await _run(workload, agents=agents, hit_rate=hit_rate, seed=seed, speculate=False)
    spec, counts = await _run(workload, agents=agents, hit_rate=hit_rate, seed=seed, speculate=True)
    total = workload.total_work() + counts["wasted_s"]
    return SpeculationResult(
        workload=workload.name,
        agents=agents,
        hit_rate=hit_rate,
        seed=seed,
        makespan_s=round(spec.makespan, 3),
        baseline_makespan_s=round(base.makespan, 3),
        ratio_to_baseline=round(spec.makespan / base.makespan, 4) if base.makespan else 0.0,
        waste_fraction=round(counts["wasted_s"] / total, 4) if total else 0.0,
        speculations=int(counts["merged"] + counts["discarded"]),
        speculations_held=int(counts["held"]),
        speculations_failed=int(counts["failed"]),
        merged=int(counts["merged"]),
        discarded=int(counts["discarded"]),
        tasks_completed=spec.completed,
        tasks_total=len(workload.tasks),
        wall_s=round(time.perf_counter() - started, 3),
    )


def run_speculation(
    workload: Workload, *, agents: int, hit_rate: float, seed: int = 0
) -> SpeculationResult:
    """Run the pair in a fresh virtual-time event loop and return the figures."""
    loop = looptime.new_event_loop()
    try:
        return loop.run_until_complete(
            run_speculation_pair(workload, agents=agents, hit_rate=hit_rate, seed=seed)
        )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
