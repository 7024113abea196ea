"""Control latency (issue #4): from a pause/steer/cancel request to the agent acting on it.

How this works and why:

* **Real sessions, fake model.** A :class:`~loomkin.service.Loomkin` runtime on the memory
  store, one session, one agent per case. Each agent's :class:`FunctionModel` streams a long
  answer in chunks of 4 characters with 50 ms between chunks, or calls a slow tool (200 ms).
* **Requests at random moments.** A trial waits for the model call (or the tool call) to
  start, sleeps a random fraction of it, then asks through the session handle
  (``pause``/``steer``/``cancel``), exactly as the CLI and the web app do.
* **What is measured.** For pause and cancel, the ``latency_ms`` the agent puts on its
  ``ControlApplied`` event (request → applied, on the runtime's clock); the goal is within one
  chunk delay during a stream. For a pause during a tool, the time from the tool's end
  (``ToolCallCompleted`` committed) to ``ControlApplied``; the goal is "immediately". For a
  steer, the time from the request to the ``ModelCallStarted`` whose request ends with the
  guidance. ``steer_final`` steers while the model streams a *final* answer (no tool call
  follows) and counts guidance that never reached a model call (``steer_final_lost``).
* **Two clocks.** The main run uses a ``looptime`` loop (virtual time: sleeps cost nothing,
  figures are deterministic for a seed); virtual time hides real scheduling costs, so a
  smaller run on a normal event loop (real time, the real ``shell`` tool running
  ``sleep 0.2``) is reported beside it with the ``real_`` prefix.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import looptime

from loomkin.agents import SessionSettings
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import (
    AgentEvent,
    ControlApplied,
    LoopFinished,
    ModelCallStarted,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.errors import UserError
from loomkin.service import Loomkin, Session
from loomkin.testing.internals import event_log, live_agent
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.base import ToolArgs, ToolSet, tool
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from loomkin.agents.agent import Agent
    from loomkin.agents.context import AgentContext
    from loomkin.agents.roles import Role
    from loomkin.core.events import Event, RecordedEvent
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.tools.base import Tool, ToolContext

__all__ = ["ControlConfig", "ControlResult", "control_table", "run_control"]

ControlResult = dict[str, float | int | str | None]
"""The JSON object printed by ``python -m loomkin.bench control --json``."""

Clock = Literal["virtual", "real"]

_GUIDANCE = "[User guidance]: "


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlConfig:
    """Sizes of the control benchmark (the defaults are the published run)."""

    trials: int = 200
    """Trials per case in virtual time."""
    real_trials: int = 20
    """Trials per case in real time (0: skip the real-time run)."""
    steer_final_trials: int = 10
    """Steers during a final answer (each lost one waits out ``lost_after_s``)."""
    chunk_delay_s: float = 0.05
    chunks: int = 20
    """Chunks of the streamed answer (the stream lasts ``(chunks - 1) × chunk_delay_s``)."""
    tool_s: float = 0.2
    lost_after_s: float = 2.0
    """A steer that reached no model call after this long counts as lost."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.trials < 1 or self.real_trials < 0 or self.steer_final_trials < 1:
            raise UserError(
                "control needs trials ≥ 1, real trials ≥ 0 and steer-final trials ≥ 1, got "
                f"{self.trials}, {self.real_trials} and {self.steer_final_trials}"
            )
        if self.chunks < 4 or self.chunk_delay_s <= 0 or self.tool_s <= 0:
            raise UserError("control needs at least 4 chunks and positive delays")


# -- models and tools -------------------------------------------------------------------------


class _SlowArgs(ToolArgs):
    """Arguments of the benchmark's ``slow`` tool."""

    seconds: float = 0.2


def _slow_tool() -> Tool[AgentContext]:
    @tool(name="slow", category="read", args=_SlowArgs, description="Work for a while.")
    async def slow(args: _SlowArgs, ctx: ToolContext, deps: AgentContext) -> str:
        await asyncio.sleep(args.seconds)
        return "done"

    return slow


def _last_text(request: ModelRequest) -> str:
    last = request.messages[-1]
    return last.text if isinstance(last, UserMessage) else ""


def _models(cfg: ControlConfig, clock: Clock) -> dict[str, Callable[[ModelRequest], Reply]]:
    """The step function of each case's agent."""
    long = "".join(f"w{i:03d}" for i in range(cfg.chunks))  # one 4-character chunk each
    work = (
        Call("slow", {"seconds": cfg.tool_s})
        if clock == "virtual"
        else Call("shell", {"command": f"sleep {cfg.tool_s}"})
    )

    def talker(_request: ModelRequest) -> Reply:
        return Reply(text=long)

    def steerer(request: ModelRequest) -> Reply:
        last = request.messages[-1]
        if _last_text(request).startswith(_GUIDANCE) or isinstance(last, ToolResultMessage):
            return Reply(text="ok")
        return Reply(text=long, tool_calls=[Call("slow", {"seconds": 0.0})])

    def worker(_request: ModelRequest) -> Reply:
        return Reply(tool_calls=[work])

    return {"talker": talker, "steerer": steerer, "finisher": talker, "worker": worker}


# -- watching the log -------------------------------------------------------------------------


class _Watch:
    """Log listener: resolves waiters with (loop time of the commit, event)."""

    def __init__(self, lk: Loomkin, timeout_s: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout_s = timeout_s
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[tuple[float, Event]]]]
        self._waiters = []
        self.remove = event_log(lk).add_listener(self._on_event)

    def _on_event(self, recorded: RecordedEvent) -> None:
        now = self.loop.time()
        for where, future in self._waiters:
            if not future.done() and where(recorded.event):
                future.set_result((now, recorded.event))
        self._waiters = [w for w in self._waiters if not w[1].done()]

    def expect(
        self, agent: Agent, kind: type[Event], where: Callable[[Event], bool] = bool
    ) -> Coroutine[None, None, tuple[float, Event]]:
        """Start waiting now for the agent's next ``kind`` event matching ``where``."""
        future: asyncio.Future[tuple[float, Event]] = self.loop.create_future()

        def match(event: Event) -> bool:
            mine = isinstance(event, AgentEvent) and event.agent_id == agent.agent_id
            return mine and isinstance(event, kind) and where(event)

        self._waiters.append((match, future))
        return _within(future, self.timeout_s)


async def _within(
    future: asyncio.Future[tuple[float, Event]], timeout_s: float | None
) -> tuple[float, Event]:
    async with asyncio.timeout(timeout_s):
        return await future


# -- the cases --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One session and what its trials share."""

    session: Session
    watch: _Watch
    cfg: ControlConfig
    rng: random.Random
    trials: int

    @property
    def stream_s(self) -> float:
        return (self.cfg.chunks - 1) * self.cfg.chunk_delay_s

    async def stream_control(self, agent: Agent, action: Literal["pause", "cancel"]) -> list[float]:
        """Pause (asap) or cancel at a random moment of the stream; ControlApplied latencies."""
        samples: list[float] = []
        for trial in range(self.trials):
            started = self.watch.expect(agent, ModelCallStarted)
            if action == "cancel" or trial == 0:
                await self.session.send("talk", to=agent.name)
            else:
                await self.session.resume(agent.name)
            await started
            await asyncio.sleep(self.rng.uniform(0.02, self.stream_s - 0.02))
            applied = self.watch.expect(agent, ControlApplied)
            finished = self.watch.expect(agent, LoopFinished)
            if action == "pause":
                await self.session.pause(agent.name, mode="asap")
            else:
                await self.session.cancel(agent.name)
            _, event = await applied
            await finished
            assert isinstance(event, ControlApplied)
            samples.append(event.latency_ms if event.checkpoint == "stream" else float("inf"))
        if action == "pause":
            await self._stop(agent)
        return samples

    async def steer(self, agent: Agent, trials: int, *, final: bool) -> list[float]:
        """Steer at a random moment of the stream; ms until a model call carries the text."""
        samples: list[float] = []
        for i in range(trials):
            started = self.watch.expect(agent, ModelCallStarted)
            await self.session.send(f"talk {i}", to=agent.name)
            await started
            await asyncio.sleep(self.rng.uniform(0.02, self.stream_s - 0.02))
            text = f"steer {i}"
            landed = self.watch.expect(agent, ModelCallStarted, _carries(_GUIDANCE + text))
            finished = self.watch.expect(agent, LoopFinished, _final)
            asked = self.watch.loop.time()
            await self.session.steer(agent.name, text)
            try:
                async with asyncio.timeout(self.cfg.lost_after_s if final else None):
                    at, _ = await landed
                samples.append((at - asked) * 1000.0)
            except TimeoutError:
                samples.append(float("inf"))
            await finished
        return samples

    async def tool_pause(self, agent: Agent, mode: Literal["asap", "at_boundary"]) -> list[float]:
        """Pause at a random moment of a running tool; ms from the tool's end to the pause."""
        samples: list[float] = []
        for trial in range(self.trials):
            started = self.watch.expect(agent, ToolCallStarted)
            if trial == 0:
                await self.session.send("work", to=agent.name)
            else:
                await self.session.resume(agent.name)
            await started
            await asyncio.sleep(self.rng.uniform(0.01, self.cfg.tool_s * 0.8))
            ended = self.watch.expect(agent, ToolCallCompleted)
            applied = self.watch.expect(agent, ControlApplied)
            finished = self.watch.expect(agent, LoopFinished)
            await self.session.pause(agent.name, mode=mode)
            end_at, _ = await ended
            at, event = await applied
            await finished
            assert isinstance(event, ControlApplied)
            ok = event.checkpoint == "after_tool"
            samples.append((at - end_at) * 1000.0 if ok else float("inf"))
        await self._stop(agent)
        return samples

    async def _stop(self, agent: Agent) -> None:
        """Cancel the paused agent's work, so that it is idle for the next case."""
        applied = self.watch.expect(agent, ControlApplied, _action("cancel"))
        await self.session.cancel(agent.name)
        await applied
        await self.session.wait_idle()  # the next case starts from an idle session


def _carries(text: str) -> Callable[[Event], bool]:
    def check(event: Event) -> bool:
        if not isinstance(event, ModelCallStarted):
            return False
        messages = event.request.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        return isinstance(last, dict) and last.get("text") == text

    return check


def _action(action: str) -> Callable[[Event], bool]:
    return lambda event: isinstance(event, ControlApplied) and event.action == action


def _final(event: Event) -> bool:
    return isinstance(event, LoopFinished) and event.outcome == "final"


# -- a whole run ------------------------------------------------------------------------------


async def _open(
    lk: Loomkin, project: str, cfg: ControlConfig, clock: Clock, trials: int
) -> tuple[Session, dict[str, Agent]]:
    steps = _models(cfg, clock)

    def factory(_role: Role, name: str) -> Model:
        step = steps.get(name, steps["talker"])  # the runtime also probes with "probe"
        return FunctionModel(
            step, name=f"bench:{name}", chunk_chars=4, chunk_delay_s=cfg.chunk_delay_s
        )

    settings = SessionSettings(bootstrap_orienter=False, max_iterations=4 * trials + 20)
    policy = PermissionPolicy(auto_approve=frozenset({"*"}))
    session = await lk.open_session(
        project, model_factory=factory, settings=settings, policy=policy
    )
    agents: dict[str, Agent] = {}
    for name in steps:
        await session.spawn_agent(name, "coder")
        agent = live_agent(session, name)
        agent.tools = agent.tools.union(ToolSet([_slow_tool()]))
        agents[name] = agent
    return session, agents


async def _measure(cfg: ControlConfig, clock: Clock) -> dict[str, list[float]]:
    """Every case on one session; the samples of each case (ms; inf = missed)."""
    trials = cfg.trials if clock == "virtual" else cfg.real_trials
    with tempfile.TemporaryDirectory() as project:
        async with await Loomkin.open("memory:") as lk:
            session, agents = await _open(lk, project, cfg, clock, trials)
            watch = _Watch(lk, timeout_s=120.0)
            run = _Run(session, watch, cfg, random.Random(cfg.seed), trials)
            samples = {
                "pause_asap_stream": await run.stream_control(agents["talker"], "pause"),
                "cancel_stream": await run.stream_control(agents["talker"], "cancel"),
                "steer": await run.steer(agents["steerer"], trials, final=False),
                "steer_final": await run.steer(
                    agents["finisher"], min(trials, cfg.steer_final_trials), final=True
                ),
                "pause_tool_asap": await run.tool_pause(agents["worker"], "asap"),
                "pause_tool_at_boundary": await run.tool_pause(agents["worker"], "at_boundary"),
            }
            watch.remove()
            await lk.wait_idle()
    return samples


def _percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile; ``None`` when it falls on a missed trial (or no samples)."""
    if not samples:
        return None
    ordered = sorted(samples)
    value = ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]
    return None if value == float("inf") else round(value, 3)


_PER: dict[str, str] = {
    "pause_asap_stream": "chunk",
    "cancel_stream": "chunk",
    "steer": "chunk",
    "steer_final": "chunk",
    "pause_tool_asap": "tool",
    "pause_tool_at_boundary": "tool",
}
"""What each case's p99 is divided by: the chunk delay or the tool's duration."""


def _figures(cfg: ControlConfig, samples: dict[str, list[float]], prefix: str) -> ControlResult:
    out: ControlResult = {}
    for case, values in samples.items():
        key = f"{prefix}{case}"
        p99 = _percentile(values, 0.99)
        out[f"{key}_n"] = len(values)
        out[f"{key}_p50_ms"] = _percentile(values, 0.5)
        out[f"{key}_p99_ms"] = p99
        out[f"{key}_max_ms"] = _percentile(values, 1.0)
        out[f"{key}_missed"] = sum(1 for v in values if v == float("inf"))
        unit_ms = 1000.0 * (cfg.chunk_delay_s if _PER[case] == "chunk" else cfg.tool_s)
        out[f"{key}_p99_per_{_PER[case]}"] = None if p99 is None else round(p99 / unit_ms, 3)
    return out


def _run_virtual(cfg: ControlConfig) -> dict[str, list[float]]:
    loop = looptime.new_event_loop()
    try:
        return loop.run_until_complete(_measure(cfg, "virtual"))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_control(config: ControlConfig | None = None) -> ControlResult:
    """Run every case in virtual time, then (``real_trials`` > 0) in real time.

    Args:
        config: Sizes (defaults: the published run).

    Returns:
        The flat JSON object: ``<case>_{n,p50_ms,p99_ms,max_ms,missed,p99_per_chunk|tool}``
        for the virtual run and the same keys prefixed ``real_`` for the real-time run.
    """
    cfg = config or ControlConfig()
    started = time.perf_counter()
    result: ControlResult = {
        "trials": cfg.trials,
        "real_trials": cfg.real_trials,
        "chunk_delay_ms": cfg.chunk_delay_s * 1000.0,
        "tool_ms": cfg.tool_s * 1000.0,
        "seed": cfg.seed,
    }
    result.update(_figures(cfg, _run_virtual(cfg), ""))
    if cfg.real_trials > 0:
        result.update(_figures(cfg, asyncio.run(_measure(cfg, "real")), "real_"))
    result["wall_s"] = round(time.perf_counter() - started, 3)
    return result


_GOALS = {
    "pause_asap_stream": "≤ 1 chunk",
    "cancel_stream": "≤ 1 chunk",
    "steer": "next model call",
    "steer_final": "next model call",
    "pause_tool_asap": "at the tool's end",
    "pause_tool_at_boundary": "at the tool's end",
}


def _ms(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, float | int) else "–"


def control_table(result: ControlResult) -> str:
    """A markdown table: one row per case, virtual and real-time p50/p99 (ms)."""
    head = ["case", "goal", "virtual p50", "virtual p99", "p99 ÷ unit", "missed"]
    head += ["real p50", "real p99", "real p99 ÷ unit", "real missed"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for case, goal in _GOALS.items():
        per = f"p99_per_{_PER[case]}"
        cells = [case, goal]
        for prefix in ("", "real_"):
            key = f"{prefix}{case}"
            cells += [
                _ms(result.get(f"{key}_p50_ms")),
                _ms(result.get(f"{key}_p99_ms")),
                _ms(result.get(f"{key}_{per}")),
                str(result.get(f"{key}_missed", "–")),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Chunk delay {result['chunk_delay_ms']} ms, tool {result['tool_ms']} ms; "
        f"{result['trials']} virtual / {result['real_trials']} real trials per case; "
        f"pause_tool figures are from the tool's end; {result['wall_s']} s wall."
    )
    return "\n".join(lines)


def dumps(result: ControlResult) -> str:
    """Return the result as one line of JSON."""
    return json.dumps(result)
