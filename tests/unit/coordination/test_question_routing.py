"""Questions routed by relevance (``ask_question`` / ``forward_question`` without ``to``).

The agent most likely to know is picked by relevance to its current task, among the agents
the communication policy allows and not yet asked; one hop limit (``max_question_hops``)
and one deadline (``question_timeout_s``) hold however a question travels. Also: insights
reach the teammates working on what they concern and climb the team tree.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from loomkin.core.events import InsightShared, QuestionAsked, QuestionForwarded, QuestionRouted
from loomkin.errors import ToolError

from .conftest import MANUAL, World, open_world

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.agent import Agent
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

QUESTION = "Which algorithm does the rate limiting in api/limits.py use?"


async def _experts(
    lk: Loomkin, project: Path, **settings: float
) -> tuple[World, Agent, Agent, Agent, Agent]:
    world = await open_world(
        lk,
        project,
        busy=frozenset({"alice", "bob", "tess"}),
        settings=replace(MANUAL, **settings),  # type: ignore[arg-type]
    )
    boss = await world.agent("boss", "lead")
    alice, bob, tess = [await world.agent(n) for n in ("alice", "bob", "tess")]
    await world.assign(alice, "Add rate limiting to api/limits.py with a token bucket")
    await world.assign(bob, "Document the rate limiting algorithm")
    await world.assign(tess, "Rewrite the README intro")
    return world, boss, alice, bob, tess


async def _routes(world: World) -> list[tuple[str, int]]:
    routed = [e for e in await world.events("question_routed") if isinstance(e, QuestionRouted)]
    names = {a.agent_id: a.name for a in world.session.agents()}
    return [(names[r.to_agent], r.hop) for r in routed]


async def test_ask_without_to_picks_the_agent_working_on_it(lk: Loomkin, project: Path) -> None:
    world, boss, alice, _bob, _tess = await _experts(lk, project)
    root = world.rt.ctx.state.team(world.root).name

    result = await world.call(boss, "ask_question", question=QUESTION)

    assert result.startswith(f"Asked {root}/alice, picked for relevance ")
    assert "working on 'Add rate limiting to api/limits.py with a token bucket'" in result
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    assert (asked.to_agent, asked.hops) == (alice.agent_id, ())
    assert await _routes(world) == [("alice", 1)]
    (message,) = await world.messages("question")
    assert message.to_agent == alice.agent_id
    assert "you were picked as the agent most likely to know" in message.content
    assert "forward_question" in message.content


async def test_forward_without_to_goes_to_the_next_expert_and_the_answer_to_the_asker(
    lk: Loomkin, project: Path
) -> None:
    world, boss, alice, bob, _tess = await _experts(lk, project)
    await world.call(boss, "ask_question", question=QUESTION)
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    qid = asked.question_id
    with pytest.raises(ToolError, match="not addressed to you"):
        await world.call(bob, "forward_question", question_id=qid)

    result = await world.call(alice, "forward_question", question_id=qid, note="bob wrote it")
    assert "/bob (relevance " in result
    assert result.endswith("(hop 1 of 5).")
    assert await _routes(world) == [("alice", 1), ("bob", 2)]
    assert world.rt.ctx.questions.open_question(qid).to_agent == bob.agent_id
    await world.call(bob, "answer_question", question_id=qid, answer="a token bucket")
    await asyncio.sleep(1)
    assert f"Answer to your question {QUESTION!r}:\na token bucket" in world.seen("boss")


async def test_routing_never_picks_the_asker_or_anyone_asked_before(
    lk: Loomkin, project: Path
) -> None:
    world, boss, alice, bob, tess = await _experts(lk, project)
    await world.call(boss, "ask_question", question=QUESTION)
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    qid = asked.question_id
    await world.call(alice, "forward_question", question_id=qid)
    await world.call(bob, "forward_question", question_id=qid)  # not back to alice or boss
    assert await _routes(world) == [("alice", 1), ("bob", 2), ("tess", 3)]
    with pytest.raises(ToolError, match="Nobody else is left to ask"):
        await world.call(tess, "forward_question", question_id=qid)
    # Naming someone still works (under the hop limit), even someone asked before.
    named = await world.call(tess, "forward_question", question_id=qid, to="alice")
    assert named.endswith("(hop 3 of 5).")
    del bob


async def test_the_hop_limit_holds_for_routed_and_named_forwards(
    lk: Loomkin, project: Path
) -> None:
    world, boss, alice, bob, tess = await _experts(lk, project, max_question_hops=2)
    await world.call(boss, "ask_question", question=QUESTION)
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    qid = asked.question_id
    await world.call(alice, "forward_question", question_id=qid)
    await world.call(bob, "forward_question", question_id=qid, to="tess")
    for to in (None, "alice"):
        args = {"to": to} if to else {}
        with pytest.raises(ToolError, match=r"forwarded 2 times \(the limit is 2\)"):
            await world.call(tess, "forward_question", question_id=qid, **args)
    forwards = [
        e for e in await world.events("question_forwarded") if isinstance(e, QuestionForwarded)
    ]
    root = world.rt.ctx.state.team(world.root).name
    assert forwards[-1].hops == (f"{root}/alice", f"{root}/bob")


async def test_a_routed_question_keeps_its_deadline_across_forwards(
    lk: Loomkin, project: Path
) -> None:
    world, boss, alice, _bob, _tess = await _experts(lk, project, question_timeout_s=30.0)
    await world.call(boss, "ask_question", question=QUESTION)
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    await asyncio.sleep(20)
    await world.call(alice, "forward_question", question_id=asked.question_id)
    await asyncio.sleep(9)
    assert await world.events("question_expired") == []

    await asyncio.sleep(2)  # 31 s after it was asked, not 30 s after the forward
    assert len(await world.events("question_expired")) == 1
    assert f"No answer to your question {QUESTION!r} within 30 s" in world.seen("boss")
    with pytest.raises(ToolError, match="no open question"):
        await world.call(alice, "forward_question", question_id=asked.question_id)


async def test_routing_respects_the_communication_policy(lk: Loomkin, project: Path) -> None:
    world = await open_world(lk, project, busy=frozenset({"fe", "api"}))
    backend = await world.team("backend", world.root)
    frontend = await world.team("frontend", world.root)
    db = await world.team("db", backend)
    dba = await world.agent("dba", team=db)
    fe = await world.agent("fe", team=frontend)  # knows best, but db may not talk to frontend
    api = await world.agent("api", team=backend)
    await world.assign(fe, "Add rate limiting to api/limits.py with a token bucket")
    await world.assign(api, "Keep the API docs current")

    result = await world.call(dba, "ask_question", question=QUESTION)

    assert result.startswith("Asked backend/api")
    assert await _routes(world) == [("api", 1)]
    del fe


async def test_nobody_to_ask_is_a_clear_error(lk: Loomkin, project: Path) -> None:
    world = await open_world(lk, project)
    alone = await world.agent("alone")
    await world.agent("concierge", "concierge")  # session host: never routed to
    with pytest.raises(ToolError, match="nobody you may ask; name an agent or team"):
        await world.call(alone, "ask_question", question="anyone?")


# -- insights -------------------------------------------------------------------------------------


async def test_an_insight_reaches_the_teammate_on_the_file_and_climbs(
    lk: Loomkin, project: Path
) -> None:
    world = await open_world(lk, project, busy=frozenset({"ana", "ben"}))
    backend = await world.team("backend", world.root)
    db = await world.team("db", backend)
    boss = await world.agent("boss", "lead")
    api = await world.agent("api", team=backend)
    rex = await world.agent("rex", "researcher", team=db)
    ana, ben = await world.agent("ana", team=db), await world.agent("ben", team=db)
    await world.assign(ana, "Add an index to db/schema.sql for users.email")
    await world.assign(ben, "Rewrite the README intro")

    result = await world.call(
        rex,
        "share_insight",
        content="db/schema.sql: users.email must stay unique; migrations depend on it",
        files=["db/schema.sql"],
        kind="bug",
    )

    assert result == (
        "Recorded the bug in your team's knowledge; sent it to ana, whose work it concerns; "
        "it climbed to team 'backend'."
    )
    (shared,) = [e for e in await world.events("insight_shared") if isinstance(e, InsightShared)]
    assert shared.recipients == (ana.agent_id,)
    assert shared.scores is not None
    assert shared.scores["ana"] >= 0.3 > shared.scores["ben"]
    assert set(shared.scores) == {"ana", "ben"}  # only teammates are scored
    sent = await world.messages("insight")
    assert [(m.to_agent, m.to_team) for m in sent] == [(ana.agent_id, None), (None, backend)]
    assert sent[0].content.startswith("Bug from rex (files: db/schema.sql), relevant to your")
    await asyncio.sleep(1)
    assert "Bug from team 'db' (one level below yours), shared by rex" in world.seen("api")
    assert world.seen("boss") == ""
    # The parent team's knowledge holds it too; depth 0 keeps a finding in the team.
    assert "users.email must stay unique" in await world.call(api, "knowledge_query")
    result = await world.call(rex, "share_insight", content="schema.sql is generated", depth=0)
    assert result.endswith("sent it to ana, whose work it concerns.")
    assert [m.to_agent for m in (await world.messages("insight"))[2:]] == [ana.agent_id]
    del boss
