"""Issue #22: context that never overflows. Compaction keeps every request inside the window."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.compaction import plan_compaction
from loomkin.agents.memory import AgentMemory
from loomkin.agents.settings import ContextSettings
from loomkin.core.chat import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
from loomkin.core.events import AgentEvent, ContextCompacted
from loomkin.llm.caching import estimate_tokens
from loomkin.testing.models import Call, FunctionModel, Reply, Stall

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.chat import ChatMessage
    from loomkin.llm.model import ModelRequest
    from loomkin.service import Loomkin

pytestmark = pytest.mark.timeout(120)

WINDOW = 8000
BRIEF = "Audit every module for unsafe eval calls. Open question: who owns the parser module?"
READS = 200


class Reader:
    """A model that reads files READS times, then answers; it summarises when asked."""

    def __init__(self) -> None:
        self.largest = 0
        self.overflows = 0
        self.summaries = 0
        self.missing_brief = 0
        self.calls = 0

    def __call__(self, request: ModelRequest) -> Reply:
        tokens = estimate_tokens(request)
        self.largest = max(self.largest, tokens)
        self.overflows += tokens > WINDOW
        first = request.messages[0]
        if "You compact the working memory" in getattr(first, "text", ""):
            self.summaries += 1
            return Reply(text="Read many files; no eval found so far. Parser owner unknown.")
        texts = [getattr(m, "text", "") for m in request.messages]
        self.missing_brief += not any(BRIEF in t for t in texts)
        self.calls += 1
        if self.calls > READS:
            return Reply(text=f"Done after {READS} reads.")
        path = f"src/mod{self.calls % 20}.py"
        return Reply(tool_calls=[Call(name="file_read", args={"path": path})])


def big_project(root: Path) -> None:
    for i in range(20):
        path = root / "src" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(60)))


async def test_two_hundred_file_reads_never_overflow_and_keep_the_brief(
    lk: Loomkin, project: Path
) -> None:
    big_project(project)
    reader = Reader()
    settings = SessionSettings(
        bootstrap_orienter=False,
        max_iterations=READS + 10,
        context=ContextSettings(
            window_tokens=WINDOW, keep_turns=3, summarise=False, compact_to=0.75
        ),
    )
    rig = await make_rig(lk, project, FunctionModel(reader), settings=settings)
    await rig.send(BRIEF)
    finished = await rig.wait_for("loop_finished")
    assert getattr(finished, "outcome", None) == "final"
    compactions = await rig.agent_events("context_compacted")
    assert compactions, "a transcript this long must have been compacted"
    assert reader.overflows == 0
    assert reader.largest <= WINDOW
    assert reader.missing_brief == 0  # the brief and its open question were never dropped
    assert all(isinstance(e, ContextCompacted) for e in compactions)
    # Both kinds happened: old results elided, and (once records piled up) turns summarised.
    assert any(isinstance(e, ContextCompacted) and e.summarised for e in compactions)
    assert any(isinstance(e, ContextCompacted) and not e.summarised for e in compactions)
    # Every read ran: the model saw its results (or their records) and went on to the end.
    completed = await rig.agent_events("tool_call_completed")
    assert len(completed) == READS
    # A restart rebuilds the very same transcript from the journal.
    replayed = AgentMemory(agent_id=rig.agent.agent_id)
    for event in await rig.agent_events():
        assert isinstance(event, AgentEvent)
        replayed.apply(event)
    assert replayed.transcript == rig.agent.memory.transcript


async def test_a_model_writes_the_summary_and_its_tokens_are_counted(
    lk: Loomkin, project: Path
) -> None:
    big_project(project)
    reader = Reader()
    settings = SessionSettings(
        bootstrap_orienter=False,
        max_iterations=READS + 10,
        context=ContextSettings(window_tokens=WINDOW, keep_turns=2),
    )
    rig = await make_rig(lk, project, FunctionModel(reader), settings=settings)
    await rig.send(BRIEF)
    await rig.wait_for("loop_finished")
    summarised = [
        e
        for e in await rig.agent_events("context_compacted")
        if isinstance(e, ContextCompacted) and e.summarised
    ]
    assert summarised
    assert reader.summaries == len(summarised)
    assert all(e.summarised_by_model and "no eval found" in e.summary for e in summarised)
    assert all(e.input_tokens > 0 for e in summarised)
    assert reader.overflows == 0
    calls = await rig.agent_events("model_call_completed")
    from_calls = sum(getattr(e, "input_tokens", 0) for e in calls)
    assert rig.agent.memory.input_tokens == from_calls + sum(e.input_tokens for e in summarised)


def _turn(n: int, size: int) -> list[ChatMessage]:
    call = ToolCall(call_id=f"c{n}", name="file_read", arguments=f'{{"path": "f{n}.py"}}')
    return [
        AssistantMessage(text="", tool_calls=(call,)),
        ToolResultMessage(call_id=f"c{n}", name="file_read", content="x" * size),
    ]


def test_plan_elides_old_results_first_and_never_splits_a_call_from_its_result() -> None:
    transcript: list[ChatMessage] = [UserMessage(text=BRIEF)]
    for n in range(10):
        transcript += _turn(n, 2000)
    settings = ContextSettings(keep_turns=3)
    plan = plan_compaction(transcript, 3000, settings)
    assert plan.summarised == 0  # eliding was enough
    assert set(plan.elided) == {f"c{n}" for n in range(7)}  # the newest three turns kept
    # Too small for that: the old turns are summarised; the cut is at a model response.
    plan = plan_compaction(transcript, 1500, settings)
    assert plan.summarised > 0
    assert isinstance(transcript[plan.summarised], AssistantMessage)
    assert plan.kept == (0,)  # the user's brief


def test_plan_keeps_the_newest_brief_guidance_and_questions() -> None:
    transcript: list[ChatMessage] = [
        UserMessage(source="system", text="[Task assigned] old task"),
        *_turn(0, 3000),
        UserMessage(source="system", text="[Task assigned] new task"),
        UserMessage(source="guidance", text="[User guidance]: be quick"),
        UserMessage(source="peer", text="[Question from bob]\nwhich file?"),
        UserMessage(source="peer", text="[Message from bob]\nfyi"),
        *_turn(1, 3000),
        *_turn(2, 3000),
    ]
    plan = plan_compaction(transcript, 100, ContextSettings(keep_turns=1))
    kept = [transcript[i] for i in plan.kept]
    assert [getattr(m, "text", "")[:20] for m in kept] == [
        "[Task assigned] new ",
        "[User guidance]: be ",
        "[Question from bob]\n",
    ]


def test_a_transcript_with_nothing_to_compact_gets_an_empty_plan() -> None:
    transcript: list[ChatMessage] = [UserMessage(text="x" * 40_000)]
    plan = plan_compaction(transcript, 100, ContextSettings())
    assert not plan.elided
    assert plan.summarised == 0


@pytest.mark.looptime
async def test_a_summary_call_that_never_answers_falls_back_to_a_listing(
    lk: Loomkin, project: Path
) -> None:
    big_project(project)
    reader = Reader()

    def stall_on_summary(request: ModelRequest) -> Reply | Stall:
        first = request.messages[0]
        if "You compact the working memory" in getattr(first, "text", ""):
            return Stall()
        return reader(request)

    settings = SessionSettings(
        bootstrap_orienter=False,
        max_iterations=60,
        context=ContextSettings(window_tokens=WINDOW, keep_turns=2),
    )
    rig = await make_rig(lk, project, FunctionModel(stall_on_summary), settings=settings)
    await rig.send(BRIEF)
    await rig.wait_for("loop_finished")
    summarised = [
        e
        for e in await rig.agent_events("context_compacted")
        if isinstance(e, ContextCompacted) and e.summarised
    ]
    assert summarised
    assert not any(e.summarised_by_model for e in summarised)
    assert all("called file_read" in e.summary for e in summarised)
    assert reader.overflows == 0
