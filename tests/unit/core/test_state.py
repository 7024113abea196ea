from __future__ import annotations

import asyncio
import copy
import inspect
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loomkin.core.events import (
    AgentFailedPermanently,
    AgentSpawned,
    AgentStatusChanged,
    Event,
    ModelCallCompleted,
    SessionBootstrapped,
    SessionEnded,
    SessionStarted,
    TaskAssigned,
    TaskStatusChanged,
    TeamCreated,
    TeamDissolved,
    UserMessagePosted,
)
from loomkin.core.records import AGENT_STATUSES
from loomkin.core.state import State
from loomkin.errors import NotFound
from loomkin.ids import AgentId, CallId, MessageId, SessionId, TaskId, TeamId

if TYPE_CHECKING:
    from collections.abc import Iterator

S = SessionId("s1")


@pytest.fixture(autouse=True)
def _no_stray_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    # looptime 0.9 asks the loop policy for a loop even around sync tests, which creates a loop
    # nobody closes (a ResourceWarning, an error under filterwarnings=error, once gc runs).
    # Giving sync tests a loop we own and close avoids it.
    if inspect.iscoroutinefunction(request.function):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def started(session: str = "s1", root: str = "root") -> SessionStarted:
    return SessionStarted(
        session_id=SessionId(session), project_root="/p", root_team_id=TeamId(root), title="t"
    )


def team(tid: str, parent: str | None = None, name: str = "") -> TeamCreated:
    return TeamCreated(
        session_id=S,
        team_id=TeamId(tid),
        name=name or tid,
        parent_team_id=TeamId(parent) if parent else None,
    )


def spawn(aid: str, tid: str, name: str = "") -> AgentSpawned:
    return AgentSpawned(
        session_id=S,
        agent_id=AgentId(aid),
        team_id=TeamId(tid),
        name=name or aid,
        role="coder",
        model="fake:m",
    )


def test_sessions_teams_and_agents_are_projected() -> None:
    st_ = State.replay(
        [
            started(),
            team("root", name="main"),
            team("c1", "root"),
            team("c2", "root"),
            team("g1", "c1"),
            spawn("a1", "c1", "coder"),
            spawn("a2", "c1", "tester"),
            SessionBootstrapped(session_id=S, concierge_id=AgentId("a1")),
            AgentStatusChanged(
                session_id=S, agent_id=AgentId("a1"), status="thinking", previous="idle"
            ),
            ModelCallCompleted(
                session_id=S,
                agent_id=AgentId("a1"),
                call_id=CallId("c"),
                text="",
                input_tokens=10,
                output_tokens=5,
                cost_usd=0.5,
            ),
            ModelCallCompleted(
                session_id=S,
                agent_id=AgentId("a1"),
                call_id=CallId("d"),
                text="",
                input_tokens=1,
                output_tokens=2,
                cost_usd=0.25,
            ),
            TaskAssigned(
                session_id=S, task_id=TaskId("t1"), owner=AgentId("a2"), owner_name="tester"
            ),
            UserMessagePosted(session_id=S, message_id=MessageId("m"), text="ignored"),
        ]
    )
    session = st_.session("s1")
    assert session.bootstrapped
    assert session.concierge_id == "a1"
    assert st_.team("root").name == "main"
    assert [t.team_id for t in st_.children("root")] == ["c1", "c2"]
    assert st_.parent("g1").team_id == "c1"  # type: ignore[union-attr]
    assert st_.parent("root") is None
    assert [t.team_id for t in st_.siblings("c1")] == ["c2"]
    assert st_.siblings("root") == []
    assert (st_.depth("root"), st_.depth("c1"), st_.depth("g1")) == (0, 1, 2)
    assert [t.team_id for t in st_.subtree("root")] == ["g1", "c1", "c2", "root"]
    a1 = st_.agent("a1")
    assert (a1.status, a1.input_tokens, a1.output_tokens, a1.cost_usd, a1.model_calls) == (
        "thinking",
        11,
        7,
        0.75,
        2,
    )
    assert st_.agent("a2").current_task_id == "t1"
    assert [a.name for a in st_.agents_in("c1")] == ["coder", "tester"]
    assert st_.find_agent("c1", "tester").agent_id == "a2"  # type: ignore[union-attr]
    assert st_.find_agent("c1", "nobody") is None


def test_dissolved_teams_leave_the_tree_but_stay_readable() -> None:
    st_ = State.replay([started(), team("c1", "root"), team("g1", "c1"), team("c2", "root")])
    st_.apply(TeamDissolved(session_id=S, team_id=TeamId("g1"), reason="done"))
    st_.apply(TeamDissolved(session_id=S, team_id=TeamId("c1"), reason="done"))
    assert [t.team_id for t in st_.children("root")] == ["c2"]
    assert st_.team("c1").status == "dissolved"
    assert st_.team("c1").dissolve_reason == "done"
    assert [t.team_id for t in st_.subtree("root")] == ["c2", "root"]


def test_session_end_failure_and_task_release() -> None:
    st_ = State.replay([started(), spawn("a1", "root")])
    st_.apply(TaskAssigned(session_id=S, task_id=TaskId("t1"), owner=AgentId("a1"), owner_name="a"))
    st_.apply(
        TaskStatusChanged(
            session_id=S, task_id=TaskId("t1"), status="in_progress", previous="assigned"
        )
    )
    assert st_.agent("a1").current_task_id == "t1"
    st_.apply(
        TaskStatusChanged(
            session_id=S, task_id=TaskId("t1"), status="completed", previous="in_progress"
        )
    )
    assert st_.agent("a1").current_task_id is None
    st_.apply(TaskAssigned(session_id=S, task_id=TaskId("t2"), owner=AgentId("a1"), owner_name="a"))
    st_.apply(
        AgentFailedPermanently(
            session_id=S, agent_id=AgentId("a1"), error="boom", released_task_id=TaskId("t2")
        )
    )
    a1 = st_.agent("a1")
    assert (a1.status, a1.failed, a1.failure, a1.current_task_id) == ("crashed", True, "boom", None)
    st_.apply(SessionEnded(session_id=S, reason="bye"))
    assert st_.session("s1").status == "ended"


def test_unknown_things_raise_clear_errors() -> None:
    st_ = State()
    with pytest.raises(NotFound, match="team 'x' not found"):
        st_.team("x")
    with pytest.raises(NotFound, match="agent 'y' not found"):
        st_.agent("y")
    with pytest.raises(NotFound, match="session 'z' not found"):
        st_.session("z")
    assert st_.get_team("x") is None
    st_.apply(
        AgentStatusChanged(session_id=S, agent_id=AgentId("ghost"), status="idle", previous="idle")
    )
    assert st_.unknown_refs == 1


# -- property: replaying any prefix equals the incremental state; the tree stays consistent --

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "team",
                "team",
                "agent",
                "agent",
                "status",
                "call",
                "assign",
                "done",
                "dissolve",
                "fail",
                "boot",
                "noise",
            ]
        ),
        st.integers(0, 1000),
        st.integers(0, 1000),
    ),
    max_size=60,
)


def build(ops: list[tuple[str, int, int]]) -> list[Event]:  # noqa: C901
    events: list[Event] = [started()]
    live: list[str] = ["root"]
    agents: list[str] = []
    tasks: dict[str, str] = {}
    children: dict[str, list[str]] = {"root": []}
    for n, (op, x, y) in enumerate(ops):
        if op == "team" and live:
            parent = live[x % len(live)]
            tid = f"t{n}"
            events.append(team(tid, parent))
            live.append(tid)
            children[parent].append(tid)
            children[tid] = []
        elif op == "agent" and live:
            aid = f"a{n}"
            events.append(spawn(aid, live[x % len(live)], name=f"n{y % 4}"))
            agents.append(aid)
        elif op == "status" and agents:
            events.append(
                AgentStatusChanged(
                    session_id=S,
                    agent_id=AgentId(agents[x % len(agents)]),
                    status=AGENT_STATUSES[y % len(AGENT_STATUSES)],
                    previous="idle",
                )
            )
        elif op == "call" and agents:
            events.append(
                ModelCallCompleted(
                    session_id=S,
                    agent_id=AgentId(agents[x % len(agents)]),
                    call_id=CallId(f"c{n}"),
                    text="",
                    input_tokens=x,
                    output_tokens=y,
                    cost_usd=x / 1000,
                )
            )
        elif op == "assign" and agents:
            owner = agents[x % len(agents)]
            tasks[f"k{n}"] = owner
            events.append(
                TaskAssigned(
                    session_id=S, task_id=TaskId(f"k{n}"), owner=AgentId(owner), owner_name=owner
                )
            )
        elif op == "done" and tasks:
            task_id = sorted(tasks)[x % len(tasks)]
            del tasks[task_id]
            events.append(
                TaskStatusChanged(
                    session_id=S,
                    task_id=TaskId(task_id),
                    status="completed",
                    previous="in_progress",
                )
            )
        elif op == "dissolve" and len(live) > 1:
            target = live[1 + x % (len(live) - 1)]
            order: list[str] = []

            def post(t: str, order: list[str] = order) -> None:
                for c in children[t]:
                    if c in live:
                        post(c)
                order.append(t)

            post(target)
            for t in order:
                events.append(TeamDissolved(session_id=S, team_id=TeamId(t), reason="r"))
                live.remove(t)
        elif op == "fail" and agents:
            events.append(
                AgentFailedPermanently(
                    session_id=S, agent_id=AgentId(agents[x % len(agents)]), error="e"
                )
            )
        elif op == "boot" and agents:
            events.append(
                SessionBootstrapped(session_id=S, concierge_id=AgentId(agents[x % len(agents)]))
            )
        elif op == "noise":
            events.append(UserMessagePosted(session_id=S, message_id=MessageId(f"m{n}"), text=""))
    return events


def snapshot(state: State) -> tuple[object, ...]:
    return copy.deepcopy((state.sessions(), state.teams(), state.agents(), state.unknown_refs))


def check_tree(state: State) -> None:
    for t in state.teams():
        if t.status != "active":
            continue
        for child in state.children(t.team_id):
            assert child.parent_team_id == t.team_id
            assert child.depth == t.depth + 1
            assert child.status == "active"
        sub = state.subtree(t.team_id)
        assert sub[-1].team_id == t.team_id
        seen: set[str] = set()
        for member in sub:  # children before parents
            assert all(c.team_id in seen for c in state.children(member.team_id))
            seen.add(member.team_id)
        for sib in state.siblings(t.team_id):
            assert state.parent(sib.team_id) is state.parent(t.team_id)
            assert sib.team_id != t.team_id
        parent = state.parent(t.team_id)
        assert (parent is None) == (t.depth == 0)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_replaying_any_prefix_matches_incremental_application(
    ops: list[tuple[str, int, int]],
) -> None:
    events = build(ops)
    incremental = State()
    snapshots = []
    for event in events:
        incremental.apply(event)
        snapshots.append(snapshot(incremental))
    for i in range(len(events)):
        assert snapshot(State.replay(events[: i + 1])) == snapshots[i]
    assert incremental.unknown_refs == 0
    check_tree(incremental)
    for a in incremental.agents():
        assert a.agent_id in incremental.team(a.team_id).agent_ids
