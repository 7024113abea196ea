from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .conftest import Harness


async def _alice(harness: Harness) -> dict[str, object]:
    detail = (await harness.client.get(harness.base)).json()
    return next(a for a in detail["agents"] if a["name"] == "alice")


async def test_answer_permission_lets_the_tool_run(harness: Harness) -> None:
    prompt = await harness.wait_prompt()
    url = f"{harness.base}/permissions/{prompt.request_id}"
    response = await harness.client.post(url, json={"decision": "allow_once"})
    assert response.status_code == 204
    await harness.until(lambda: (Path(harness.session.project_root) / "hello.py").exists())
    again = await harness.client.post(url, json={"decision": "allow_once"})
    assert again.status_code == 404
    assert prompt.request_id in again.json()["detail"]


async def test_answer_permission_validates_the_decision(harness: Harness) -> None:
    prompt = await harness.wait_prompt()
    url = f"{harness.base}/permissions/{prompt.request_id}"
    for body in ({"decision": "maybe"}, {}, {"decision": "deny", "x": 1}):
        response = await harness.client.post(url, json=body)
        assert response.status_code == 422, body
    assert harness.session.pending_permissions()


async def test_pause_while_waiting_is_queued_then_applies(harness: Harness) -> None:
    prompt = await harness.wait_prompt()
    response = await harness.client.post(f"{harness.base}/agents/alice/pause", json={})
    assert response.status_code == 202
    assert response.json()["action"] == "pause"
    assert (await _alice(harness))["pause_queued"] is True
    await harness.client.post(
        f"{harness.base}/permissions/{prompt.request_id}", json={"decision": "allow_once"}
    )
    await harness.until(lambda: harness.session.agent("alice").status == "paused")
    alice = await _alice(harness)
    assert alice["status"] == "paused"
    assert alice["pause_queued"] is False


async def test_steer_lands_in_the_next_request_after_resume(harness: Harness) -> None:
    await harness.wait_prompt()
    agent_id = harness.session.agent("alice").agent_id
    force = await harness.client.post(
        f"{harness.base}/agents/{agent_id}/pause", json={"mode": "asap", "force": True}
    )
    assert force.status_code == 202
    await harness.until(lambda: harness.session.agent("alice").status == "paused")
    steer = await harness.client.post(
        f"{harness.base}/agents/{agent_id}/steer", json={"text": "wrap it up"}
    )
    assert steer.status_code == 202
    resume = await harness.client.post(f"{harness.base}/agents/{agent_id}/resume", json={})
    assert resume.status_code == 202
    await harness.until(lambda: harness.session.agent("alice").status == "idle")
    feed = (await harness.client.get(f"{harness.base}/feed?limit=5000")).json()["rows"]
    guided = [
        r
        for r in feed
        if r["kind"] == "model_call_started"
        and r["actor"] == "alice"
        and "[User guidance]: wrap it up" in str(r["payload"])
    ]
    assert guided


async def test_controls_refuse_what_cannot_be_done(harness: Harness) -> None:
    await harness.wait_prompt()
    base = f"{harness.base}/agents"
    not_paused = await harness.client.post(f"{base}/alice/resume", json={})
    assert not_paused.status_code == 422
    assert "not paused" in not_paused.json()["detail"]
    for body in ({"text": ""}, {}, {"text": "x" * 20_001}):
        response = await harness.client.post(f"{base}/alice/steer", json=body)
        assert response.status_code == 422, body
    bad_mode = await harness.client.post(f"{base}/alice/pause", json={"mode": "later"})
    assert bad_mode.status_code == 422
    for action in ("pause", "resume", "cancel", "steer"):
        response = await harness.client.post(f"{base}/nobody/{action}", json={"text": "x"})
        assert response.status_code in (404, 422), action
    missing = await harness.client.post(f"{base}/nobody/pause", json={})
    assert missing.status_code == 404
    assert "alice" in missing.json()["detail"]  # names the agents there are


async def test_cancel_and_inspect(harness: Harness) -> None:
    await harness.wait_prompt()
    inspect = await harness.client.get(f"{harness.base}/agents/alice/inspect")
    assert inspect.status_code == 200
    snapshot = inspect.json()["snapshot"]
    assert snapshot["name"] == "alice"
    assert snapshot["messages"]
    cancel = await harness.client.post(f"{harness.base}/agents/build/alice/cancel", json={})
    assert cancel.status_code == 202
    assert cancel.json()["action"] == "cancel"
    missing = await harness.client.get(f"{harness.base}/agents/nobody/inspect")
    assert missing.status_code == 404
