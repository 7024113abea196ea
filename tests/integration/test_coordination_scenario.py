"""Coordination end to end: scripted agents on the real runtime (virtual time).

* two coders edit the same file → the second write is stopped before it lands;
* a looping agent → nudged twice, then its task is reassigned to an idle coder;
* a vote among three agents → the weighted result is recorded as a decision;
* an insight about a file reaches the agent working on that file and nobody else.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.coordination import RebalancerSettings
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import (
    ConflictDetected,
    DecisionLogged,
    Event,
    InsightShared,
    MessageSent,
    RebalancerActed,
    TaskStatusChanged,
    ToolCallCompleted,
    VoteResolved,
)
from loomkin.ids import AgentId
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply, ScriptedModel
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

WRITES = PermissionPolicy(auto_approve=frozenset({"file_write", "file_edit"}))


async def _open(
    lk: Loomkin, project: Path, models: dict[str, Model], settings: SessionSettings | None = None
) -> Session:
    def factory(_role: Role, name: str) -> Model:
        return models.get(name) or ScriptedModel([], name="scripted:idle")

    return await lk.open_session(
        project,
        model_factory=factory,
        settings=settings or SessionSettings(bootstrap_orienter=False),
        policy=WRITES,
    )


async def _spawn(session: Session, *pairs: tuple[str, str]) -> None:
    for name, role in pairs:
        await session.spawn_agent(name, role)


async def _wait(lk: Loomkin, session: Session, where: Callable[[Event], bool]) -> Event:
    async with session.events(after=0) as sub:
        async for recorded in sub:
            if where(recorded.event):
                return recorded.event
    raise AssertionError("the log ended first")


async def _events(lk: Loomkin, session: Session) -> list[Event]:
    return [r.event for r in await session.history()]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("def hello() -> str:\n    return 'hello'\n")
    (root / "README.md").write_text("# sample\n")
    return root


async def test_second_stale_write_is_stopped_before_it_lands(project: Path) -> None:
    read = Reply(tool_calls=[Call("file_read", {"path": "app.py"})])
    alice = ScriptedModel(
        [
            read,
            Reply(
                tool_calls=[
                    Call(
                        "file_edit",
                        {"path": "app.py", "old_string": "'hello'", "new_string": "'hi'"},
                    )
                ]
            ),
            Reply(text="edited"),
        ]
    )
    bob = ScriptedModel(
        [
            read,
            Reply(text="read it"),
            Reply(
                tool_calls=[
                    Call(
                        "file_edit",
                        {
                            "path": "app.py",
                            "old_string": "hello()",
                            "new_string": "hello(name: str)",
                        },
                    )
                ]
            ),
            Reply(text="tried"),
        ]
    )
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, project, {"alice": alice, "bob": bob})
        await _spawn(session, ("lead", "lead"), ("alice", "coder"), ("bob", "coder"))
        await session.send("read app.py", to="bob")
        await lk.wait_idle()
        await session.send("change the greeting", to="alice")
        await lk.wait_idle()
        await session.send("add a name parameter", to="bob")
        await lk.wait_idle()
        events = await _events(lk, session)
    assert (project / "app.py").read_text() == "def hello() -> str:\n    return 'hi'\n"
    conflicts = [e for e in events if isinstance(e, ConflictDetected)]
    assert [c.conflict_type for c in conflicts] == ["stale_write"]
    assert conflicts[0].blocked
    bob_id = session.agent("bob").agent_id
    alice_id = session.agent("alice").agent_id
    edits = [e for e in events if isinstance(e, ToolCallCompleted) and e.tool == "file_edit"]
    assert edits[-1].agent_id == bob_id
    assert edits[-1].outcome == "denied"
    assert "Blocked before writing" in edits[-1].result
    sent = [e for e in events if isinstance(e, MessageSent)]
    urgent = [m for m in sent if m.msg_type == "file_conflict"]
    assert [(m.to_agent, m.tier) for m in urgent] == [(alice_id, "urgent")]
    lead_id = session.agent("lead").agent_id
    assert any(m.msg_type == "conflict_detected" and m.to_agent == lead_id for m in sent)
    # Alice's model read the conflict as text, not as an object dump.
    texts = [
        m.text
        for r in alice.requests
        for m in r.messages
        if isinstance(m, UserMessage) and "file conflict" in m.text
    ]
    assert texts
    assert "bob" in texts[0]


def _looping(_request: ModelRequest) -> Reply:
    return Reply(tool_calls=[Call("file_read", {"path": "app.py"})])


async def test_looping_agent_is_nudged_then_its_task_is_reassigned(project: Path) -> None:
    looper = FunctionModel(_looping, latency_s=5.0)
    spare = FunctionModel(lambda _r: Reply(text="Done: the greeting is fixed."))
    settings = SessionSettings(
        bootstrap_orienter=False,
        max_iterations=40,
        rebalancer=RebalancerSettings(check_every_s=10.0, loop_repeats=3),
    )
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, project, {"looper": looper, "spare": spare}, settings)
        await _spawn(session, ("lead", "lead"), ("looper", "coder"))
        task_id = await session.create_task("Fix the greeting in app.py", role="coder")
        await _wait(
            lk,
            session,
            lambda e: isinstance(e, TaskStatusChanged) and e.status == "in_progress",
        )
        assert session.task(task_id).owner_id == session.agent("looper").agent_id
        await _spawn(session, ("spare", "coder"))
        await lk.wait_idle()
        events = await _events(lk, session)
    acts = [e for e in events if isinstance(e, RebalancerActed)]
    assert [a.action for a in acts[:3]] == ["nudge", "nudge", "reassign"]
    assert all(a.problem == "loop" for a in acts[:3])
    assert acts[2].reassigned_to == session.agent("spare").agent_id
    final = [e for e in events if isinstance(e, TaskStatusChanged) and e.task_id == task_id]
    assert final[-1].status == "completed"
    assert final[-1].by == session.agent("spare").agent_id
    nudges = [e for e in events if isinstance(e, MessageSent) and e.msg_type in ("nudge", "abort")]
    assert {e.to_agent for e in nudges} == {session.agent("looper").agent_id}


def _voter(option: str, confidence: float) -> Callable[[ModelRequest], Reply]:
    def fn(request: ModelRequest) -> Reply:
        results = [m for m in request.messages if isinstance(m, ToolResultMessage)]
        if any("Voted" in r.content for r in results):
            return Reply(text="voted")
        for m in reversed(request.messages):
            found = re.search(r'vote_id="(vote_[^"]+)"', getattr(m, "text", "") or "")
            found = found or re.search(r"Vote (vote_\S+) opened", getattr(m, "content", ""))
            if found:
                args = {"vote_id": found.group(1), "option": option, "confidence": confidence}
                return Reply(tool_calls=[Call("cast_vote", {**args, "rationale": "fits"})])
        return Reply(
            tool_calls=[
                Call(
                    "propose_vote",
                    {
                        "topic": "rate limiter algorithm",
                        "options": ["token bucket", "fixed window"],
                        "scope": "code",
                    },
                )
            ]
        )

    return fn


async def test_vote_among_three_records_the_weighted_result(project: Path) -> None:
    models: dict[str, Model] = {
        "lead": FunctionModel(_voter("fixed window", 1.0)),
        "alice": FunctionModel(_voter("token bucket", 0.9)),
        "tess": FunctionModel(_voter("fixed window", 1.0)),
    }
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, project, models)
        await _spawn(session, ("lead", "lead"), ("alice", "coder"), ("tess", "tester"))
        await session.send("decide the algorithm with the team", to="lead")
        await _wait(lk, session, lambda e: isinstance(e, VoteResolved))
        await lk.wait_idle()
        events = await _events(lk, session)
    resolved = [e for e in events if isinstance(e, VoteResolved)]
    assert len(resolved) == 1
    # Two raw votes for "fixed window", but the coder's expertise in "code" weighs more.
    assert resolved[0].winner == "token bucket"
    assert resolved[0].counts == {"token bucket": 1, "fixed window": 2}
    decisions = [e for e in events if isinstance(e, DecisionLogged)]
    assert decisions[-1].title == "rate limiter algorithm: token bucket"
    assert decisions[-1].decision_id == resolved[0].decision_id
    requests = [e for e in events if isinstance(e, MessageSent) and e.msg_type == "vote_request"]
    assert len(requests) == 3
    assert all(r.tier == "high" for r in requests)
    assert "token bucket" in requests[0].content
    assert "cast_vote" in requests[0].content
    results = [e for e in events if isinstance(e, MessageSent) and e.msg_type == "vote_result"]
    assert len(results) == 3


async def test_insight_reaches_only_the_agent_working_on_the_file(project: Path) -> None:
    def busy(_request: ModelRequest) -> Reply:
        return Reply(text="working")

    rex = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    Call(
                        "share_insight",
                        {
                            "content": "hello() in app.py must keep returning a str; callers "
                            "concatenate it",
                            "files": ["app.py"],
                            "kind": "bug",
                        },
                    )
                ]
            ),
            Reply(text="shared"),
        ]
    )
    models: dict[str, Model] = {
        "alice": FunctionModel(busy, latency_s=1000.0),
        "bob": FunctionModel(busy, latency_s=1000.0),
        "rex": rex,
    }
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, project, models)
        await _spawn(session, ("alice", "coder"), ("bob", "coder"), ("rex", "researcher"))
        for title, name in (
            ("Add a shout flag to app.py", "alice"),
            ("Rewrite the intro of README.md", "bob"),
        ):
            await session.create_task(title, assign_to=name)
        await session.send("share what you found", to="rex")
        shared = await _wait(lk, session, lambda e: isinstance(e, InsightShared))
        assert isinstance(shared, InsightShared)
        events = await _events(lk, session)
    alice = session.agent("alice").agent_id
    assert shared.recipients == (alice,)
    assert shared.scores is not None
    assert shared.scores["alice"] >= 0.3 > shared.scores["bob"]
    insights = [e for e in events if isinstance(e, MessageSent) and e.msg_type == "insight"]
    assert [m.to_agent for m in insights] == [AgentId(alice)]
