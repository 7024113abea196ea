"""The swarm makespan benchmark: the real orchestrator on a workload, in virtual time.

How this works and why:

* **Everything real but the model.** A :class:`~loomkin.service.Loomkin` runtime on the
  in-memory store, one session, N agents spawned with ``SessionRuntime.spawn_agent``. The
  workload's tasks and the strategy's dependency edges are put on the board through
  :class:`~loomkin.tasks.TaskService` before any agent exists; then the agents are spawned and
  the real scheduler assigns ready tasks as agents free up. Agents run their real loop, call
  the real ``emit_milestone``, ``publish_partial`` and ``task_complete`` tools, and every
  change is an event in the log.
* **The model spends the work.** :class:`WorkModel` reads the task brief in the request
  (``[Task assigned] <title> (task id <id>, ...``) and counts its own earlier answers since
  the brief: answer k sleeps until the task's k-th milestone or chunk is due and calls the
  tool for it; the next sleeps for the rest of the work and calls ``task_complete``; after that
  it answers with plain text, which ends the loop.
* **Virtual time.** The run happens in a ``looptime`` event loop, which jumps the clock to the
  next timer whenever nothing is ready to run, so a 20-hour workload takes seconds and every
  figure (except ``wall_s``) is a deterministic function of the workload, the agent count and
  the strategy. Orchestration costs no virtual time; the makespan measures scheduling only.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, cast

import looptime

from loomkin.agents import SessionSettings
from loomkin.bench.graph import critical_path, lower_bound, priority_order, strategy_deps
from loomkin.bench.lives import Lives
from loomkin.coordination import RebalancerSettings
from loomkin.coordination.autoscale import AutoscaleSettings
from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import AgentSpawned, TaskStatusChanged
from loomkin.ids import TaskId
from loomkin.llm.model import StreamEnd, StreamEvent, TextDelta, ToolCallDelta, UsageReport
from loomkin.service import Loomkin, Session

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.agents.roles import Role
    from loomkin.bench.graph import Strategy
    from loomkin.bench.workloads import DepSpec, TaskSpec, Workload
    from loomkin.core.events import RecordedEvent
    from loomkin.llm.model import Model, ModelRequest

__all__ = [
    "ADAPTIVE",
    "SwarmResult",
    "WorkModel",
    "adaptive_settings",
    "run_swarm",
    "run_swarm_async",
]

ADAPTIVE = "adaptive"
"""The strategy that starts with one worker and lets the autoscaler size the team (its
edges are the self-organizing ones)."""
_ONBOARDING = "[Onboarding brief"

_BRIEF = re.compile(r"^\[Task assigned\] .* \(task id (?P<task_id>\S+?), ")


@dataclass(frozen=True, slots=True, kw_only=True)
class SwarmResult:
    """The figures of one swarm run (``to_json`` gives the command's JSON contract)."""

    workload: str
    agents: int
    strategy: str
    seed: int
    makespan_s: float
    """Virtual seconds from the first agent's spawn to the last task's completion."""
    lower_bound_s: float
    critical_path_s: float
    total_work_s: float
    utilization: float
    """Total work ÷ (agents × makespan)."""
    ratio: float
    """Makespan ÷ lower bound."""
    tasks_completed: int
    tasks_total: int
    events: int
    """Events appended to the log during the run."""
    model_calls: int
    wall_s: float
    """Real seconds the run took."""
    agent_seconds: float = 0.0
    """Each worker agent's life from spawn to retirement (or the end), summed."""
    peak_agents: int = 0
    spawns: int = 0
    """Agents the autoscaler spawned (0 for a fixed team)."""
    retires: int = 0
    steals: int = 0
    """Tasks claimed from a busy agent (work stealing)."""
    max_agents: int = 0
    """The autoscaler's ceiling (the fixed size for other strategies)."""
    spawn_cost_s: float = 0.0
    """Virtual seconds a spawned agent spends onboarding before it can work."""

    def to_json(self) -> dict[str, str | int | float]:
        """Return the result as a flat JSON object."""
        return asdict(self)

    def dumps(self) -> str:
        """Return the result as one line of JSON."""
        return json.dumps(self.to_json())


class WorkModel:
    """A model that spends each task's work in virtual time and reports through the tools.

    Args:
        tasks: The workload task behind each board task id (filled before agents start).
    """

    def __init__(self, tasks: dict[TaskId, TaskSpec], *, onboarding_s: float = 0.0) -> None:
        self._tasks = tasks
        self._onboarding_s = onboarding_s
        self._next_call = 0
        self.calls = 0

    @property
    def name(self) -> str:
        return "bench:work"

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        delay, calls, text = self._step(request)
        if delay > 0:
            await asyncio.sleep(delay)
        if text:
            yield TextDelta(text=text)
        for index, (name, arguments) in enumerate(calls):
            self._next_call += 1
            yield ToolCallDelta(
                index=index,
                call_id=f"call_{self._next_call}",
                name=name,
                arguments_delta=json.dumps(arguments),
            )
        yield UsageReport(input_tokens=1, output_tokens=1)
        yield StreamEnd(stop_reason="tool_calls" if calls else "stop")

    def _step(self, request: ModelRequest) -> tuple[float, list[tuple[str, dict[str, str]]], str]:
        """Return (seconds to spend, tool calls, text) for the next answer."""
        last = request.messages[-1] if request.messages else None
        if isinstance(last, UserMessage) and last.text.startswith(_ONBOARDING):
            return self._onboarding_s, [], "Ready."  # a new agent reads its brief first
        task_id, answered = _current_task(request)
        spec = self._tasks.get(task_id) if task_id is not None else None
        if spec is None:
            return 0.0, [], "Nothing to do."
        groups = _groups(spec)
        done = groups[answered - 1][0] if 0 < answered <= len(groups) else 0.0
        if answered < len(groups):
            fraction, calls = groups[answered]
            return (fraction - done) * spec.work_s, calls, ""
        if answered == len(groups):
            result = {"result": f"{spec.id} done", "task_id": str(task_id)}
            return (1.0 - done) * spec.work_s, [("task_complete", result)], ""
        return 0.0, [], f"{spec.id} is complete."


def _current_task(request: ModelRequest) -> tuple[TaskId | None, int]:
    """The task of the latest brief in the request and how many answers followed it."""
    answered = 0
    for message in reversed(request.messages):
        if isinstance(message, AssistantMessage):
            answered += 1
        elif isinstance(message, UserMessage) and message.text.startswith("[Task assigned]"):
            match = _BRIEF.match(message.text)
            return (TaskId(match["task_id"]) if match else None), answered
    return None, answered


def _groups(spec: TaskSpec) -> list[tuple[float, list[tuple[str, dict[str, str]]]]]:
    """The task's milestone and chunk tool calls, grouped by the fraction they are due at."""
    groups: list[tuple[float, list[tuple[str, dict[str, str]]]]] = []
    for fraction, kind, name in spec.events():
        call = (
            ("emit_milestone", {"name": name})
            if kind == "milestone"
            else ("publish_partial", {"content": f"{spec.id} chunk {name}/{spec.partials}"})
        )
        if groups and groups[-1][0] == fraction:
            groups[-1][1].append(call)
        else:
            groups.append((fraction, [call]))
    return groups


@dataclass(frozen=True, slots=True)
class _Tally:
    """What the session's log says about the run: events, completions, the last one's time."""

    events: int
    completed: int
    makespan: float
    end: float
    """When the last task completed (the log's clock)."""

    @classmethod
    def of(cls, history: list[RecordedEvent]) -> _Tally:
        # Times come from the events: the log's clock follows the (virtual) loop time.
        spawns = [r.recorded_at for r in history if isinstance(r.event, AgentSpawned)]
        done = [
            r.recorded_at
            for r in history
            if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
        ]
        start = min(spawns, default=0.0)
        end = max(done, default=start)
        return cls(len(history), len(done), end - start, end)


def adaptive_settings(max_agents: int, spawn_cost_s: float = 60.0) -> AutoscaleSettings:
    """The autoscaler as the benchmark runs it; nothing here depends on the workload.

    A short window (a spawn costs a minute of onboarding, so waiting long to be sure costs
    more than it saves) and no cooldown beyond it (one decision spawns for the whole
    backlog, so there is no burst of decisions to damp). An idle agent is retired after twice
    the spawn cost: keeping it that long costs at most as much again as re-spawning it would
    (the ski-rental rule), and the graphs' waves of newly ready work often come within it.
    """
    return AutoscaleSettings(
        enabled=True,
        max_agents=max_agents,
        min_agents=1,
        scale_up_ratio=1.0,
        window_s=5.0,
        cooldown_s=0.0,
        retire_after_s=max(2.0 * spawn_cost_s, 1.0),
        max_spawn_step=max_agents,
    )


def _agent_roles(workload: Workload, agents: int) -> list[str]:
    """All coders, plus one agent for each other role the workload names (when room)."""
    others = sorted({t.role for t in workload.tasks} - {"coder"})
    extra = others[: max(0, agents - 1)]
    return ["coder"] * (agents - len(extra)) + extra


async def _put_on_board(
    session: Session, workload: Workload, deps: list[DepSpec]
) -> dict[TaskId, TaskSpec]:
    ids: dict[str, TaskId] = {}
    specs: dict[TaskId, TaskSpec] = {}
    for spec in priority_order(workload, deps):
        task_id = TaskId(await session.create_task(spec.id, role=spec.role, work_s=spec.work_s))
        ids[spec.id] = task_id
        specs[task_id] = spec
    for dep in deps:
        await session.add_dependency(
            ids[dep.task], ids[dep.on], kind=dep.kind, milestone=dep.milestone
        )
    return specs


async def run_swarm_async(
    workload: Workload,
    *,
    agents: int,
    strategy: Strategy | str,
    seed: int = 0,
    spawn_cost_s: float = 60.0,
    autoscale: AutoscaleSettings | None = None,
) -> SwarmResult:
    """Run the swarm benchmark on the running loop (which should keep virtual time).

    ``strategy`` ``"adaptive"`` starts with one worker agent and lets the autoscaler grow the
    team up to ``agents`` (``autoscale`` overrides its settings); each agent it spawns spends
    ``spawn_cost_s`` reading its onboarding brief before it can work.
    """
    adaptive = strategy == ADAPTIVE
    deps = strategy_deps(workload, "self-organizing" if adaptive else cast("Strategy", strategy))
    scaling = (
        (autoscale or adaptive_settings(agents, spawn_cost_s)) if adaptive else AutoscaleSettings()
    )
    started = time.perf_counter()
    specs: dict[TaskId, TaskSpec] = {}
    models: list[WorkModel] = []

    def factory(_role: Role, _name: str) -> Model:
        model = WorkModel(specs, onboarding_s=spawn_cost_s if adaptive else 0.0)
        models.append(model)
        return model

    longest = max(t.work_s for t in workload.tasks)
    settings = SessionSettings(
        max_agents_per_team=max(agents, 8, scaling.max_agents),
        autoscale=scaling,
        max_iterations=max(30, max(len(_groups(t)) for t in workload.tasks) + 10),
        bootstrap_orienter=False,
        # One model call here stands for up to a whole task's work (many minutes of virtual
        # time): a rebalancer tuned for real calls would call that "stuck" and reassign it.
        rebalancer=RebalancerSettings(stuck_after_s=10 * longest, check_every_s=longest),
        # For the same reason the model is silent for that long before its answer, which a
        # real stream never is: the idle timeout must not count it as a failed call.
        stream_idle_timeout_s=10 * longest,
    )
    with tempfile.TemporaryDirectory() as project:
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(project, model_factory=factory, settings=settings)
            specs.update(await _put_on_board(session, workload, deps))
            # Adaptive: one worker; the autoscaler adds the rest as the backlog asks. (Setup
            # takes no virtual time, so with a window > 0 no spawn can come before it.)
            roles = ["coder"] if adaptive else _agent_roles(workload, agents)
            for i, role in enumerate(roles):
                await session.spawn_agent(f"agent{i:03d}", role)
            await _wait_done(session, len(workload.tasks), scaling)
            history = await session.history()
    tally = _Tally.of(history)
    lives = Lives.of(history, end=tally.end)
    result = _result(workload, agents, strategy, seed, tally, models, started)
    return replace(
        result,
        agent_seconds=round(lives.agent_seconds, 3),
        peak_agents=lives.peak,
        spawns=lives.spawns,
        retires=lives.retires,
        steals=lives.steals,
        max_agents=agents,
        spawn_cost_s=spawn_cost_s if adaptive else 0.0,
    )


async def _wait_done(session: Session, tasks: int, scaling: AutoscaleSettings) -> None:
    """Wait until every task completed, or nothing moves any more.

    With the autoscaler on, a quiet moment is not the end: work may wait for a spawn the
    window or the cooldown holds back, so the wait goes on while the log still grows.
    """
    while True:
        await session.wait_idle()
        history = await session.history()
        done = sum(
            1
            for r in history
            if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
        )
        if done >= tasks or not scaling.enabled:
            return
        await asyncio.sleep(scaling.window_s + scaling.cooldown_s + 1.0)
        if len(await session.history()) == len(history):
            return


def _result(
    workload: Workload,
    agents: int,
    strategy: Strategy | str,
    seed: int,
    tally: _Tally,
    models: list[WorkModel],
    started: float,
) -> SwarmResult:
    makespan = tally.makespan
    bound = lower_bound(workload, agents)
    total = workload.total_work()
    return SwarmResult(
        workload=workload.name,
        agents=agents,
        strategy=strategy,
        seed=seed,
        makespan_s=round(makespan, 3),
        lower_bound_s=round(bound, 3),
        critical_path_s=round(critical_path(workload), 3),
        total_work_s=round(total, 3),
        utilization=round(total / (agents * makespan), 4) if makespan > 0 else 0.0,
        ratio=round(makespan / bound, 4) if bound > 0 else 0.0,
        tasks_completed=tally.completed,
        tasks_total=len(workload.tasks),
        events=tally.events,
        model_calls=sum(m.calls for m in models),
        wall_s=round(time.perf_counter() - started, 3),
    )


def run_swarm(
    workload: Workload,
    *,
    agents: int,
    strategy: Strategy | str,
    seed: int = 0,
    spawn_cost_s: float = 60.0,
    autoscale: AutoscaleSettings | None = None,
) -> SwarmResult:
    """Run the swarm benchmark in a fresh virtual-time event loop and return its figures."""
    loop = looptime.new_event_loop()
    try:
        return loop.run_until_complete(
            run_swarm_async(
                workload,
                agents=agents,
                strategy=strategy,
                seed=seed,
                spawn_cost_s=spawn_cost_s,
                autoscale=autoscale,
            )
        )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
