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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import looptime

from loomkin.agents import SessionSettings
from loomkin.bench.graph import critical_path, lower_bound, priority_order, strategy_deps
from loomkin.coordination import RebalancerSettings
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

__all__ = ["SwarmResult", "WorkModel", "run_swarm", "run_swarm_async"]

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

    def __init__(self, tasks: dict[TaskId, TaskSpec]) -> None:
        self._tasks = tasks
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
        return cls(len(history), len(done), max(done, default=start) - start)


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
    workload: Workload, *, agents: int, strategy: Strategy, seed: int = 0
) -> SwarmResult:
    """Run the swarm benchmark on the running loop (which should keep virtual time)."""
    deps = strategy_deps(workload, strategy)
    started = time.perf_counter()
    specs: dict[TaskId, TaskSpec] = {}
    models: list[WorkModel] = []

    def factory(_role: Role, _name: str) -> Model:
        model = WorkModel(specs)
        models.append(model)
        return model

    longest = max(t.work_s for t in workload.tasks)
    settings = SessionSettings(
        max_agents_per_team=max(agents, 8),
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
            for i, role in enumerate(_agent_roles(workload, agents)):
                await session.spawn_agent(f"agent{i:03d}", role)
            await session.wait_idle()
            tally = _Tally.of(await session.history())
    return _result(workload, agents, strategy, seed, tally, models, started)


def _result(
    workload: Workload,
    agents: int,
    strategy: Strategy,
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


def run_swarm(workload: Workload, *, agents: int, strategy: Strategy, seed: int = 0) -> SwarmResult:
    """Run the swarm benchmark in a fresh virtual-time event loop and return its figures."""
    loop = looptime.new_event_loop()
    try:
        return loop.run_until_complete(
            run_swarm_async(workload, agents=agents, strategy=strategy, seed=seed)
        )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
