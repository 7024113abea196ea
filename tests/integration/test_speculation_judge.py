"""The judge of prose assumptions is a journaled model call (issue 18, SPEC §3.7 and §3.17).

``bob`` writes the client ahead of ``ann``'s interface on a prose assumption; when the
interface is done a judge model reads the assumption next to the real output. Its call is
recorded (``SpeculationJudged``: model, exact request, answer, tokens, cost, verdict,
reasoning) in the batch of the verdict, counted in the session's spend as bob's, and shown
by the speculation's record and summary. A judge whose call fails is a failed check that
says why, not a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import pytest
from _pipeline_models import Playbook, Turn, answered
from _speculation import open_pipeline, tentative_done

from loomkin.agents.judge import JUDGE_NAME
from loomkin.api.feed import feed_row
from loomkin.cli.speculation import speculation_lines
from loomkin.core.events import (
    ModelCallCompleted,
    SpeculationDiscarded,
    SpeculationJudged,
    SpeculationMerged,
    SpeculationValidated,
)
from loomkin.errors import ProviderUnavailable
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

PROSE = "parse raises ValueError on bad input"
JUDGE_MODEL = "openai:gpt-4.1-mini"
"""A priced name, so the judge's call has a cost ($0.40 / $1.60 per million tokens)."""


def _interface(ref: list[Session]) -> object:
    async def play(turn: Turn) -> Reply:
        k = answered(turn)
        if k == 0:
            await tentative_done(ref[0])
            content = "def parse(text):\n    raise ValueError(text)\n"
            return Reply(tool_calls=[Call("file_write", {"path": "api.py", "content": content})])
        if k == 1:
            done = {"result": "interface written", "decisions": ["parse raises ValueError"]}
            return Reply(tool_calls=[Call("task_complete", done)])
        return Reply(text="done")

    return play


async def _client(turn: Turn) -> Reply:
    k = answered(turn)
    if k == 0:
        content = "from api import parse\n" + ("# redone\n" if "[Redo]" in turn.brief else "")
        return Reply(tool_calls=[Call("file_write", {"path": "client.py", "content": content})])
    if k == 1:
        return Reply(tool_calls=[Call("task_complete", {"result": "client written"})])
    return Reply(text="done")


class Models:
    """The workers' playbook, and ``judge`` for the judge's name."""

    def __init__(self, book: Playbook, judge: FunctionModel) -> None:
        self.book = book
        self.judge = judge

    def __call__(self, role: Role, name: str) -> Model:
        return self.judge if name == JUDGE_NAME else self.book.factory(role, name)


async def _run(repo: Path, judge: FunctionModel) -> tuple[Loomkin, Session, str, list]:
    ref: list[Session] = []
    book = Playbook(parts={"write the client": _client})
    book.parts["write the interface"] = _interface(ref)  # type: ignore[assignment]
    lk = await Loomkin.open("memory:")
    session, _t1, t2 = await open_pipeline(lk, repo, Models(book, judge), ref)
    await session.speculate(t2, "bob", [{"text": PROSE}])
    await lk.wait_idle()
    return lk, session, t2, await session.history()


def _holds(request: ModelRequest) -> Reply:
    return Reply(
        text="HOLDS\nThe interface raises ValueError on bad input.",
        input_tokens=1000,
        output_tokens=50,
    )


async def test_the_judges_call_is_journaled_and_counted_as_spend(repo: Path) -> None:
    judge = FunctionModel(_holds, name=JUDGE_MODEL)
    lk, session, task, recorded = await _run(repo, judge)
    async with lk:
        (judged_at,) = [r for r in recorded if isinstance(r.event, SpeculationJudged)]
        judged = judged_at.event
        assert isinstance(judged, SpeculationJudged)
        assert (judged.model, judged.holds) == (JUDGE_MODEL, True)
        assert judged.reasoning == "The interface raises ValueError on bad input."
        assert judged.text.startswith("HOLDS")
        assert (judged.input_tokens, judged.output_tokens) == (1000, 50)
        assert judged.cost_usd == pytest.approx((1000 * 0.40 + 50 * 1.60) / 1e6)
        assert PROSE in json.dumps(judged.request)
        bob = next(a for a in session.agents() if a.name == "bob")
        assert judged.agent_id == bob.agent_id
        # Recorded in the batch of the verdict it led to, just before it.
        (validated_at,) = [r for r in recorded if isinstance(r.event, SpeculationValidated)]
        assert validated_at.position == judged_at.position + 1
        assert isinstance(validated_at.event, SpeculationValidated)
        assert validated_at.event.held
        assert [r.event for r in recorded if isinstance(r.event, SpeculationMerged)]

        # The session's spend counts it, as bob's (his own calls are scripted: free).
        spend = await lk.spend(session.session_id)
        bobs = next(a for a in spend.agents if a.name == "bob")
        own_calls = [
            r.event
            for r in recorded
            if isinstance(r.event, ModelCallCompleted) and r.event.agent_id == bob.agent_id
        ]
        assert bobs.model_calls == len(own_calls) + 1
        assert bobs.cost_usd == pytest.approx(judged.cost_usd)
        assert spend.cost_usd == pytest.approx(judged.cost_usd)

        # The speculation's record and the summary show it (without the long request).
        info = session.speculation(task)
        (shown,) = info.judgements
        assert shown["model"] == JUDGE_MODEL
        assert shown["reasoning"] == judged.reasoning
        assert "request" not in shown
        summary = session.speculation_summary()
        assert (summary.judge_calls, summary.judge_tokens) == (1, 1050)
        assert summary.judge_usd == pytest.approx(judged.cost_usd)

        # `loomkin speculation list` shows the verdict, the judge and its spend.
        text = _cli_text(session)
        assert "'write the client' [held, merged] bob ahead of 'write the interface'" in text
        assert (
            "✓ 'parse raises ValueError on bad input' (judge openai:gpt-4.1-mini, $0.0005: " in text
        )
        assert "judge: 1 model calls, 1,050 tokens, $0.0005" in text

        # The activity feed shows it as a speculation row that says who judged and why.
        row = feed_row(judged_at, session.names())
        assert row is not None
        assert row.type == "speculation"
        assert "judge (openai:gpt-4.1-mini) on 'write the client'" in row.summary
        assert "holds: The interface raises ValueError" in row.summary


async def test_a_failed_judge_call_is_a_failed_check_that_says_why(repo: Path) -> None:
    def down(_request: ModelRequest) -> Reply:
        raise ProviderUnavailable("the judge's provider is down")

    lk, session, task, recorded = await _run(repo, FunctionModel(down, name=JUDGE_MODEL))
    async with lk:
        assert not [r for r in recorded if isinstance(r.event, SpeculationJudged)]
        (validated,) = [r.event for r in recorded if isinstance(r.event, SpeculationValidated)]
        assert not validated.held
        assert "judge's model call failed" in str(validated.verdicts[0]["reasoning"])
        (dropped,) = [r.event for r in recorded if isinstance(r.event, SpeculationDiscarded)]
        assert dropped.reason == "assumption_failed"
        assert session.task(task).status == "completed"  # redone with the real output
        assert session.speculation_summary().judge_calls == 0
        text = _cli_text(session)
        assert "'write the client' [failed, discarded]" in text
        assert (
            "✗ 'parse raises ValueError on bad input' (judge the judge's model call failed" in text
        )
        assert "  wasted: " in text


def _cli_text(session: Session) -> str:
    """What ``loomkin speculation list`` prints for the session (its API answer as text)."""
    listed = {
        "speculations": [asdict(i) for i in session.speculations()],
        "summary": asdict(session.speculation_summary()),
    }
    return "\n".join(speculation_lines(json.loads(json.dumps(listed))))
