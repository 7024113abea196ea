from __future__ import annotations

import asyncio

import pytest

from loomkin.core.events import SessionStarted, TeamDissolved
from loomkin.core.state import State
from loomkin.errors import InvalidTransition, NotFound, PolicyRefused, UserError
from loomkin.ids import SessionId, TeamId
from loomkin.runtime import EventLog, TeamManager


@pytest.fixture
async def teams(log: EventLog) -> TeamManager:
    state = State()
    log.add_listener(lambda rec: state.apply(rec.event))
    await log.append(
        SessionStarted(session_id=SessionId("s"), project_root="/p", root_team_id=TeamId("root"))
    )
    return TeamManager(log, state, max_depth=2)


async def test_create_children_with_depth_and_lookups(teams: TeamManager) -> None:
    root = await teams.create_team("s", "main", team_id="root")
    assert root == "root"
    a = await teams.create_team("s", "a", parent_team_id=root, spawned_by="lead", purpose="x")
    b = await teams.create_team("s", "b", parent_team_id=root)
    a1 = await teams.create_team("s", "a1", parent_team_id=a)
    assert a.startswith("team_")
    assert (teams.depth(root), teams.depth(a), teams.depth(a1)) == (0, 1, 2)
    assert teams.team(a).purpose == "x"
    assert teams.team(a).spawned_by == "lead"
    assert teams.parent(a1).team_id == a  # type: ignore[union-attr]
    assert [t.team_id for t in teams.children(root)] == [a, b]
    assert [t.team_id for t in teams.siblings(a)] == [b]
    assert [t.team_id for t in teams.subtree(root)] == [a1, a, b, root]


async def test_depth_limit_is_refused_with_a_clear_message(teams: TeamManager) -> None:
    root = await teams.create_team("s", "main", team_id="root")
    a = await teams.create_team("s", "a", parent_team_id=root)
    a1 = await teams.create_team("s", "a1", parent_team_id=a)
    with pytest.raises(PolicyRefused, match="depth 3, beyond the team depth limit of 2"):
        await teams.create_team("s", "too deep", parent_team_id=a1)


async def test_unknown_or_dissolved_parent_is_refused(teams: TeamManager) -> None:
    with pytest.raises(NotFound, match="team 'nope' not found"):
        await teams.create_team("s", "x", parent_team_id="nope")
    root = await teams.create_team("s", "main", team_id="root")
    a = await teams.create_team("s", "a", parent_team_id=root)
    await teams.dissolve(a, reason="done")
    with pytest.raises(InvalidTransition, match="dissolved"):
        await teams.create_team("s", "late", parent_team_id=a)
    with pytest.raises(InvalidTransition, match="already dissolved"):
        await teams.dissolve(a, reason="again")


async def test_dissolve_takes_the_subtree_children_first_in_one_batch(
    teams: TeamManager, log: EventLog, store
) -> None:
    root = await teams.create_team("s", "main", team_id="root")
    a = await teams.create_team("s", "a", parent_team_id=root)
    b = await teams.create_team("s", "b", parent_team_id=root)
    a1 = await teams.create_team("s", "a1", parent_team_id=a)
    a2 = await teams.create_team("s", "a2", parent_team_id=a)
    commits_before = len(store.appends)
    dissolved = await teams.dissolve(a, reason="finished", by="lead")
    assert dissolved == [a1, a2, a]
    assert len(store.appends) == commits_before + 1  # one batch
    events = [r.event for r in await log.read()][-3:]
    assert all(isinstance(e, TeamDissolved) for e in events)
    assert [e.team_id for e in events] == [a1, a2, a]  # type: ignore[attr-defined]
    assert all(e.dissolved_by == "lead" for e in events)  # type: ignore[attr-defined]
    assert [t.team_id for t in teams.children(root)] == [b]
    assert teams.team(a1).status == "dissolved"


async def test_concurrent_team_creation(teams: TeamManager) -> None:
    root = await teams.create_team("s", "main", team_id="root")
    ids = await asyncio.gather(
        *(teams.create_team("s", f"t{i}", parent_team_id=root) for i in range(20))
    )
    assert [t.team_id for t in teams.children(root)] == ids


async def test_parent_from_another_session_or_empty_name_is_refused(teams: TeamManager) -> None:
    root = await teams.create_team("s", "main", team_id="root")
    with pytest.raises(UserError, match="belongs to session 's', not 'other'"):
        await teams.create_team("other", "x", parent_team_id=root)
    with pytest.raises(UserError, match="non-empty name"):
        await teams.create_team("s", "  ")
