"""HTTP routes of adaptive teams: a team's scaling state and bounds, and claiming a task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import TeamScaleSet

if TYPE_CHECKING:
    from .conftest import Harness


async def test_get_and_set_a_teams_scale(harness: Harness) -> None:
    url = f"{harness.base}/teams/root/scale"
    shown = await harness.client.get(url)
    assert shown.status_code == 200
    body = shown.json()
    assert body["team_name"] == "root"
    assert body["enabled"] is False  # [autoscale] is off by default
    assert body["pinned"] is None
    pinned = await harness.client.post(url, json={"pin": 2, "reason": "enough"})
    assert pinned.status_code == 200
    assert pinned.json()["pinned"] == 2
    cleared = await harness.client.post(url, json={"clear": True})
    assert cleared.json()["pinned"] is None
    history = await harness.session.history()
    sets = [r.event for r in history if isinstance(r.event, TeamScaleSet)]
    assert [(s.pinned, s.reason) for s in sets] == [(2, "enough"), (None, "")]


async def test_bad_bounds_are_refused_and_change_nothing(harness: Harness) -> None:
    url = f"{harness.base}/teams/root/scale"
    refused = await harness.client.post(url, json={"min": 5, "max": 2})
    assert refused.status_code == 422
    assert "min 5 is above max 2" in refused.json()["detail"]
    for body in ({"pin": -1}, {"max": 0}, {"pin": 1, "x": 2}, {"pin": "two"}):
        response = await harness.client.post(url, json=body)
        assert response.status_code == 422, body
    missing = await harness.client.get(f"{harness.base}/teams/nope/scale")
    assert missing.status_code == 404
    history = await harness.session.history()
    assert not [r for r in history if isinstance(r.event, TeamScaleSet)]


async def test_claiming_a_started_or_unknown_task_is_refused(harness: Harness) -> None:
    await harness.wait_prompt()  # alice is there by then
    task_id = await harness.session.create_task("scaling route check", assign_to="alice")
    url = f"{harness.base}/tasks/{task_id}/claim"
    bad = await harness.client.post(url, json={"agent": "nobody"})
    assert bad.status_code == 404
    gone = await harness.client.post(
        f"{harness.base}/tasks/task_nope/claim", json={"agent": "alice"}
    )
    assert gone.status_code == 404
    own = await harness.client.post(url, json={"agent": "alice"})
    assert own.status_code == 409  # alice owns it already: nothing to claim


async def test_feed_rows_for_scaling_claims_and_moves(harness: Harness) -> None:
    from loomkin.api.feed import feed_row
    from loomkin.core.events import CapacityMoved, RecordedEvent, ScaleDecided, TaskClaimed
    from loomkin.ids import AgentId, EventId, SessionId, TaskId, TeamId

    sid = SessionId(harness.session.session_id)
    team = TeamId(harness.session.teams()[0].team_id)
    task = TaskId(await harness.session.create_task("parse the config"))
    events = [
        ScaleDecided(
            session_id=sid,
            team_id=team,
            action="spawn",
            reason="6 ready task(s) for 0 idle agent(s)",
            agents=("coder-1", "coder-2"),
            role="coder",
        ),
        ScaleDecided(session_id=sid, team_id=team, action="retire", reason="idle", agents=("c",)),
        ScaleDecided(session_id=sid, team_id=team, action="hold", reason="at its size bound"),
        TeamScaleSet(session_id=sid, team_id=team, pinned=3, by="lead"),
        TeamScaleSet(session_id=sid, team_id=team, min_agents=1, max_agents=4, by="user"),
        TeamScaleSet(session_id=sid, team_id=team, by="user"),
        TaskClaimed(
            session_id=sid, task_id=task, owner=AgentId("agent_b"), owner_name="bob", reason="r"
        ),
        CapacityMoved(session_id=sid, task_id=task, from_team=team, to_team=team, reason="r"),
    ]
    rows = []
    for i, event in enumerate(events, start=1):
        recorded = RecordedEvent(
            position=i,
            stream="s",
            stream_version=1,
            event_id=EventId(f"e{i}"),
            recorded_at=0.0,
            event=event,
        )
        row = feed_row(recorded, harness.loomkin.names())
        assert row is not None
        rows.append(row)
    assert [r.type for r in rows] == ["scale"] * 6 + ["task_assigned", "scale"]
    assert rows[0].summary.startswith("autoscaler spawned coder-1, coder-2: 6 ready")
    assert rows[0].team == "root"
    assert rows[1].summary.startswith("autoscaler retired c")
    assert rows[2].summary.startswith("autoscaler held: at its size bound")
    assert rows[3].summary == "team size pinned at 3 by lead"
    assert rows[4].summary == "team size bounded to 1–4 by user"
    assert rows[5].summary == "team size bounds cleared by user"
    assert rows[6].summary == "task 'parse the config' claimed by bob"
    assert rows[7].summary == "task 'parse the config' moved to team 'root'"
