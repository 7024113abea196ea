"""Fuzzing the agent with malformed model answers: no crash, no hang (issue #14).

How this works and why:

* **Answers, not inputs.** What can break an agent is what its model sends back. The fault
  catalogue (:mod:`loomkin.testing.faults`) makes one malformed answer per model request
  from a seeded ``Random`` per agent: arguments nested 100,000 deep, 50,000-digit integers,
  duplicate ids, exceptions mid-stream, server-sent events that are not JSON or not UTF-8,
  keep-alives only, connections cut mid-event, and a few well-formed answers so loops last.
* **Three drivers, all through the real loop.** ``loop``: a fake model
  (:class:`~loomkin.testing.models.FunctionModel`) plays the answers to real agents.
  ``openai`` and ``anthropic``: the answers are served over HTTP by a local server
  (:class:`~loomkin.testing.wire.WireServer`) to the real SDKs, through the models
  :func:`~loomkin.llm.registry.make_model` builds (adapter and retry wrapper, as users run
  them). Each round opens a fresh in-memory runtime with :data:`ROUND_AGENTS` new coders,
  sends each one message and waits until all are idle.
* **Virtual time.** Everything runs in a ``looptime`` loop: idle timeouts (120 s) and retry
  backoffs cost nothing, and a round that is not idle after :data:`ROUND_LIMIT_S` virtual
  seconds is a *hang*.
* **What is counted.** Crashes (``AgentCrashed`` events), hangs, model-call failures
  (``ModelCallFailed``), error tool results, and requests that break OpenAI's or Anthropic's
  transcript rules (checked on every request the fake model or the server receives). Every
  answer is matched to what it caused: each request ends in exactly one ``ModelCallCompleted``
  or ``ModelCallFailed`` of its agent, in order, and a completed call's tool results carry
  its call ids; so the figures are also given by fault kind.

``python -m loomkin.bench fuzz --answers N --seed S [--driver loop|openai|anthropic|all]``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import looptime

from loomkin.agents import SessionSettings
from loomkin.agents.settings import ContextSettings
from loomkin.core.events import (
    AgentCrashed,
    AgentFailedPermanently,
    Event,
    LoopFinished,
    ModelCallCompleted,
    ModelCallFailed,
    ToolCallCompleted,
)
from loomkin.llm.registry import make_model
from loomkin.service import Loomkin
from loomkin.testing.faults import ANTHROPIC_FAULTS, LOOP_FAULTS, OPENAI_FAULTS, pick
from loomkin.testing.models import (
    FunctionModel,
    ScriptedModel,
    ScriptStep,
    check_requests,
    take_request_problems,
)
from loomkin.testing.transcripts import anthropic_wire_problems, openai_wire_problems
from loomkin.testing.wire import WireServer
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.testing.wire import WireReply, WireRequest

__all__ = ["DRIVERS", "Driver", "FuzzResult", "fuzz", "fuzz_table", "run_fuzz"]

Driver = Literal["loop", "openai", "anthropic"]
DRIVERS: tuple[Driver, ...] = ("loop", "openai", "anthropic")

ROUND_AGENTS = 8
"""Fresh agents per round (each gets one message and works until its loop ends)."""
ROUND_LIMIT_S = 24 * 3600.0
"""Virtual seconds a round may take before the agents still busy count as hung."""
SETTINGS = SessionSettings(
    bootstrap_orienter=False,
    max_iterations=10,
    max_agents_per_team=ROUND_AGENTS + 2,
    # Huge answers make the loop compact its context; the summary is then a listing, not a
    # model call, so every answer the fuzzed model serves is one model call of the loop.
    context=ContextSettings(summarise=False),
)
"""The default idle timeout (120 s) and retry policy; short loops keep transcripts small."""
POLICY = PermissionPolicy(auto_approve=frozenset({"category:read"}))
"""The fuzzed calls only read (or fail before running); nothing waits for a person."""
_MAX_PROBLEMS = 20
_NAME = re.compile(r"You are (fuzz-\d+-\d+)")


@dataclass(slots=True)
class KindFigures:
    """What the answers of one fault kind caused."""

    answers: int = 0
    model_call_failures: int = 0
    error_results: int = 0
    ok_results: int = 0


@dataclass(slots=True)
class FuzzResult:
    """The figures of one driver's run."""

    driver: str
    seed: int
    answers: int = 0
    """Model answers served (one per model request)."""
    agents: int = 0
    crashes: int = 0
    """``AgentCrashed`` events (the loop raised)."""
    hangs: int = 0
    """Agents still busy when their round's virtual time limit passed."""
    model_call_failures: int = 0
    """``ModelCallFailed`` events (each failed attempt of a call)."""
    final_failures: int = 0
    """Of those, the ones that ended a call for good (no retry left, or a permanent error)."""
    error_results: int = 0
    """Tool results flagged as errors (what the model reads about its bad call)."""
    ok_results: int = 0
    invalid_requests: int = 0
    """Requests that break OpenAI's or Anthropic's transcript rules."""
    unmatched: int = 0
    """Answers whose effect could not be matched in the log (should be 0)."""
    virtual_s: float = 0.0
    wall_s: float = 0.0
    by_kind: dict[str, KindFigures] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """The first crashes, hangs and invalid requests, in words."""

    def to_json(self) -> dict[str, object]:
        """The figures as a JSON object."""
        data = asdict(self)
        data["virtual_s"] = round(self.virtual_s, 1)
        data["wall_s"] = round(self.wall_s, 2)
        return data

    def note(self, problem: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem[:300])


class _Answers:
    """Chooses each agent's answers from a ``Random`` of its own, and remembers their kinds."""

    def __init__(self, faults: Mapping[str, object], seed: int) -> None:
        self._faults = faults
        self._seed = seed
        self._rngs: dict[str, random.Random] = {}
        self.kinds: dict[str, list[str]] = {}

    def next(self, agent: str) -> tuple[str, random.Random]:
        rng = self._rngs.get(agent)
        if rng is None:
            rng = self._rngs[agent] = random.Random(f"{self._seed}:{agent}")
        kind = pick(self._faults, rng)
        self.kinds.setdefault(agent, []).append(kind)
        return kind, rng

    @property
    def served(self) -> int:
        return sum(len(k) for k in self.kinds.values())


def fuzz(answers: int, seed: int, driver: Driver) -> FuzzResult:
    """Run one driver for at least ``answers`` answers, in virtual time.

    Logging is silenced meanwhile: every failed tool and model call of thousands would be
    logged (with arguments of hundreds of kilobytes); the figures count them instead.
    """
    loop = looptime.new_event_loop()
    silenced = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        return loop.run_until_complete(fuzz_async(answers, seed, driver))
    finally:
        logging.disable(silenced)
        loop.close()


def run_fuzz(answers: int, seed: int, drivers: tuple[Driver, ...] = DRIVERS) -> dict[str, object]:
    """Run ``drivers`` and return the report (``python -m loomkin.bench fuzz --json``)."""
    results = [fuzz(answers, seed, driver) for driver in drivers]
    totals = {
        key: sum(getattr(r, key) for r in results)
        for key in (
            "answers",
            "crashes",
            "hangs",
            "model_call_failures",
            "final_failures",
            "error_results",
            "invalid_requests",
            "unmatched",
        )
    }
    return {"seed": seed, "totals": totals, "drivers": [r.to_json() for r in results]}


async def fuzz_async(answers: int, seed: int, driver: Driver) -> FuzzResult:
    """Run one driver in the running loop (which should be a ``looptime`` loop)."""
    result = FuzzResult(driver=driver, seed=seed)
    started, loop = time.perf_counter(), asyncio.get_running_loop()
    virtual_start = loop.time()
    with tempfile.TemporaryDirectory(prefix="loomkin-fuzz-") as tmp:
        project = Path(tmp)
        (project / "README.md").write_text("# fuzz\n\nA project for fuzzed agents.\n")
        (project / "app.py").write_text("def hello() -> str:\n    return 'hello'\n")
        if driver == "loop":
            await _fuzz_loop(project, answers, result)
        else:
            await _fuzz_wire(project, answers, result, driver)
    result.virtual_s = loop.time() - virtual_start
    result.wall_s = time.perf_counter() - started
    return result


async def _fuzz_loop(project: Path, answers: int, result: FuzzResult) -> None:
    served = _Answers(LOOP_FAULTS, result.seed)
    check_requests(True)
    take_request_problems()

    def model_for(name: str) -> Model:
        def answer(_request: ModelRequest) -> ScriptStep:
            kind, rng = served.next(name)
            return LOOP_FAULTS[kind](rng)

        return FunctionModel(answer, name=f"fuzz:{name}")

    round_no = 0
    while served.served < answers:
        round_no += 1
        await _round(project, round_no, model_for, served, result)
        for problem in take_request_problems():
            result.invalid_requests += 1
            result.note(f"invalid request: {problem}")
    result.answers = served.served


async def _fuzz_wire(project: Path, answers: int, result: FuzzResult, driver: Driver) -> None:
    faults = OPENAI_FAULTS if driver == "openai" else ANTHROPIC_FAULTS
    served = _Answers(faults, result.seed)

    def handler(request: WireRequest) -> WireReply:
        body = request.json()
        assert isinstance(body, dict)
        messages = body.get("messages")
        assert isinstance(messages, list)
        system = str(body.get("system", "")) if driver == "anthropic" else str(messages[0])
        found = _NAME.search(system)
        name = found.group(1) if found else "unknown"
        check = openai_wire_problems if driver == "openai" else anthropic_wire_problems
        for problem in check(messages):  # type: ignore[arg-type]
            result.invalid_requests += 1
            result.note(f"invalid request of {name}: {problem}")
        kind, rng = served.next(name)
        return faults[kind](rng)

    async with WireServer(handler) as server:
        if driver == "openai":
            model = make_model("openai-compatible:fuzz", base_url=f"{server.base_url}/v1")
        else:
            model = make_model(
                "anthropic:claude-fuzz", base_url=server.base_url, env={"ANTHROPIC_API_KEY": "k"}
            )
        round_no = 0
        while served.served < answers:
            round_no += 1
            await _round(project, round_no, lambda _name: model, served, result)
        close = getattr(getattr(model, "inner", model), "aclose", None)
        if close is not None:
            await close()  # the SDK's connection pool
    result.answers = served.served


async def _round(
    project: Path,
    round_no: int,
    model_for: Callable[[str], Model],
    served: _Answers,
    result: FuzzResult,
) -> None:
    """One fresh runtime, :data:`ROUND_AGENTS` new agents, one message each, until idle."""
    names = [f"fuzz-{round_no}-{i}" for i in range(ROUND_AGENTS)]
    models = {name: model_for(name) for name in names}
    idle = ScriptedModel([], name="scripted:idle")

    def factory(_role: Role, name: str) -> Model:
        return models.get(name, idle)

    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            project, model_factory=factory, settings=SETTINGS, policy=POLICY
        )
        agents = {name: (await session.spawn_agent(name, "coder")).agent_id for name in names}
        for name in names:
            await session.send("Look around the project and report what you find.", to=name)
        try:
            async with asyncio.timeout(ROUND_LIMIT_S):
                await lk.wait_idle()
        except TimeoutError:
            pass  # counted below: agents whose loop did not finish
        events = [r.event for r in await session.history()]
    result.agents += len(names)
    for name, agent_id in agents.items():
        mine = [e for e in events if getattr(e, "agent_id", None) == agent_id]
        _account(name, mine, served.kinds.get(name, []), result)


def _account(name: str, events: list[Event], kinds: list[str], result: FuzzResult) -> None:
    """Add one agent's figures to ``result``, matching its answers to their effects."""
    for event in events:
        if isinstance(event, AgentCrashed | AgentFailedPermanently):
            result.crashes += isinstance(event, AgentCrashed)
            result.note(f"{name} crashed: {event.error}")
    if not any(isinstance(e, LoopFinished) for e in events):
        result.hangs += 1
        result.note(f"{name} never finished its loop (answers: {kinds[-3:]})")
    results: dict[str, ToolCallCompleted] = {
        e.call_id: e for e in events if isinstance(e, ToolCallCompleted)
    }
    ends = [e for e in events if isinstance(e, ModelCallCompleted | ModelCallFailed)]
    if len(ends) != len(kinds):
        result.unmatched += abs(len(kinds) - len(ends))
        result.note(f"{name}: {len(kinds)} answers but {len(ends)} model call ends")
    for kind, end in zip(kinds, ends, strict=False):
        figures = result.by_kind.setdefault(kind, KindFigures())
        figures.answers += 1
        if isinstance(end, ModelCallFailed):
            figures.model_call_failures += 1
            result.model_call_failures += 1
            result.final_failures += not end.will_retry
            continue
        for call in end.tool_calls:
            completed = results.get(str(call["call_id"]))
            if completed is None:
                continue  # not run: the loop stopped (iteration limit) before it
            if completed.is_error:
                figures.error_results += 1
                result.error_results += 1
            else:
                figures.ok_results += 1
                result.ok_results += 1
    for kind in kinds[len(ends) :]:
        result.by_kind.setdefault(kind, KindFigures()).answers += 1


def fuzz_table(report: Mapping[str, object]) -> str:
    """The report as a text table: one line per driver, then one per fault kind."""
    drivers = report["drivers"]
    assert isinstance(drivers, list)
    lines = [
        f"seed {report['seed']}",
        f"{'driver':<10}{'answers':>8}{'crashes':>8}{'hangs':>7}{'failures':>9}"
        f"{'final':>7}{'errors':>8}{'invalid':>8}{'virtual s':>11}{'wall s':>8}",
    ]
    for d in drivers:
        lines.append(
            f"{d['driver']:<10}{d['answers']:>8}{d['crashes']:>8}{d['hangs']:>7}"
            f"{d['model_call_failures']:>9}{d['final_failures']:>7}{d['error_results']:>8}"
            f"{d['invalid_requests']:>8}{d['virtual_s']:>11}{d['wall_s']:>8}"
        )
    for d in drivers:
        lines += [
            "",
            f"{d['driver']}: {'kind':<24}{'answers':>8}{'failures':>9}{'errors':>8}{'ok':>6}",
        ]
        for kind, f in sorted(d["by_kind"].items()):
            lines.append(
                f"{'':<{len(d['driver']) + 2}}{kind:<24}{f['answers']:>8}"
                f"{f['model_call_failures']:>9}{f['error_results']:>8}{f['ok_results']:>6}"
            )
        lines += [f"  ! {p}" for p in d["problems"]]
    return "\n".join(lines)
