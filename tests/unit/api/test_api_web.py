"""The page's own views over HTTP: server identity, the feed's tail, prompt previews, a task's
detail, the timeline, the run summary, and a stored session read-only."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from loomkin.agents.budgets import Budgets
from loomkin.api import LaunchPolicy, create_app
from loomkin.service import Loomkin

from .conftest import BASE
from .scenario import start_scenario

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Harness


async def test_server_says_who_it_is_and_what_it_hosts(harness: Harness) -> None:
    body = (await harness.client.get("/api/server")).json()
    assert body["server_id"].startswith("srv_")
    assert body["open_sessions"] == [harness.session.session_id]
    other = create_app(harness.loomkin)  # another server process would get another id
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url=BASE) as c:
        assert (await c.get("/api/server")).json()["server_id"] != body["server_id"]


async def test_feed_tail_pages_back_to_the_first_row(harness: Harness) -> None:
    await harness.wait_prompt()
    full = (await harness.client.get(f"{harness.base}/feed?limit=5000")).json()["rows"]
    newest = (await harness.client.get(f"{harness.base}/feed/tail?limit=7")).json()
    assert newest["last_position"] >= full[-1]["position"]
    # Other agents may still be writing: page back from the end of `full`.
    page = (
        await harness.client.get(
            f"{harness.base}/feed/tail?limit=7&before={full[-1]['position'] + 1}"
        )
    ).json()
    assert page["more"]
    rows = page["rows"]
    while page["more"]:
        url = f"{harness.base}/feed/tail?limit=7&before={page['first_position']}"
        page = (await harness.client.get(url)).json()
        rows = page["rows"] + rows
    assert [r["position"] for r in rows] == [r["position"] for r in full]
    chat = await harness.client.get(f"{harness.base}/feed/tail?kinds=user_message_posted")
    assert [r["kind"] for r in chat.json()["rows"]] == ["user_message_posted"]
    for query in ("before=0", "limit=0", "limit=5001", "before=x"):
        response = await harness.client.get(f"{harness.base}/feed/tail?{query}")
        assert response.status_code == 422, query


async def test_a_prompt_shows_its_diff_and_what_always_covers(harness: Harness) -> None:
    await harness.wait_prompt()
    prompt = (await harness.client.get(harness.base)).json()["permissions"][0]
    assert prompt["tool"] == "file_write"
    assert "+++ b/hello.py" in prompt["diff"]
    assert "+print('hello')" in prompt["diff"].splitlines()
    assert "file_write on hello.py only (this one file)" in prompt["always"]
    assert prompt["command"] == ""


async def test_task_detail_timeline_and_report(harness: Harness) -> None:
    prompt = await harness.wait_prompt()
    await harness.session.answer_permission(prompt.request_id, "allow_once")
    await harness.until(lambda: len(harness.session.tasks()) == 2)
    detail = (await harness.client.get(harness.base)).json()
    review = next(t for t in detail["tasks"] if t["title"] == "Review hello.py")
    body = (await harness.client.get(f"{harness.base}/tasks/{review['task_id']}")).json()
    assert body["title"] == "Review hello.py"
    assert body["depends_on"] == ["Write hello.py (blocks)"]
    assert body["history"][0]["kind"] == "task_created"
    missing = await harness.client.get(f"{harness.base}/tasks/task_nope")
    assert missing.status_code == 404
    assert "task_nope" in missing.json()["detail"]

    timeline = (await harness.client.get(f"{harness.base}/timeline")).json()
    assert "alice" in {lane["name"] for lane in timeline["lanes"]}
    kinds = {span["kind"] for span in timeline["spans"]}
    assert {"model", "tool"} <= kinds
    assert timeline["spend"]
    assert all(s["end"] is None or s["end"] >= s["start"] for s in timeline["spans"])

    await harness.until(lambda: harness.loomkin.last_position > 0)
    report = (await harness.client.get(f"{harness.base}/report")).json()
    assert report["session"]["session_id"] == harness.session.session_id
    assert report["model_calls"] > 0
    await harness.until(lambda: any(t.status == "completed" for t in harness.session.tasks()))
    report = (await harness.client.get(f"{harness.base}/report")).json()
    assert [f["path"] for f in report["files"]] == ["hello.py"]
    assert "+print('hello')" in report["files"][0]["diff"]


async def test_a_stored_session_not_hosted_here_is_read_only(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/store.db"
    project = tmp_path / "p"
    project.mkdir()
    async with await Loomkin.open(store) as first:
        session = await start_scenario(first, project)
        # Follow the log until alice asks (a store on disk commits from a thread: counting
        # loop turns raced it, and the tasks were not all stored yet).
        async with session.events(after=0) as events:
            async for _recorded in events:
                if session.pending_permissions():
                    break
        session_id = session.session_id
    async with await Loomkin.open(store) as second:
        app = create_app(second)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                base = f"/api/sessions/{session_id}"
                detail = (await client.get(base)).json()
                assert detail["session"]["open"] is False
                assert detail["permissions"] == []
                assert detail["working"] == 0
                assert "alice" in {a["name"] for a in detail["agents"]}
                assert {"root", "build"} <= {t["name"] for t in detail["teams"]}
                assert detail["tasks"]
                tail = (await client.get(f"{base}/feed/tail")).json()
                assert tail["rows"]
                assert (await client.get(f"{base}/timeline")).status_code == 200
                alice = next(a for a in detail["agents"] if a["name"] == "alice")
                refused = await client.post(f"{base}/agents/{alice['agent_id']}/pause", json={})
                assert refused.status_code == 404
                assert "not open" in refused.json()["detail"]


async def test_a_stored_session_resumes_over_http_only_under_the_roots(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/store.db"
    project = tmp_path / "p"
    project.mkdir()
    async with await Loomkin.open(store) as first:
        # A model that is never called (nothing is sent): resuming only builds it.
        session_id = (await first.open_session(project, model="ollama:never-called")).session_id
    root = await asyncio.to_thread(tmp_path.resolve)
    for roots, status in (((), 403), ((root,), 200)):
        async with await Loomkin.open(store) as second:
            app = create_app(second, launch=LaunchPolicy(roots=roots))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                    response = await client.post(f"/api/sessions/{session_id}/resume", json={})
                    assert response.status_code == status, response.text
                    detail = (await client.get(f"/api/sessions/{session_id}")).json()
                    assert detail["session"]["open"] is (status == 200)
                    if status == 403:
                        assert "root" in response.json()["detail"]


async def test_a_budget_pause_says_why(harness: Harness) -> None:
    # The page counts an agent a budget paused among what waits on the user: the card
    # needs the reason, not only "paused".
    await harness.session.set_budgets(Budgets(session_tokens=1))

    def over() -> bool:
        return any(a.status == "paused" for a in harness.session.agents())

    await harness.until(over)
    agents = (await harness.client.get(harness.base)).json()["agents"]
    paused = [a for a in agents if a["status"] == "paused"]
    assert paused
    assert all(a["status_reason"].startswith("budget exceeded") for a in paused)
