from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Harness


async def test_list_sessions_shows_the_open_session(harness: Harness) -> None:
    response = await harness.client.get("/api/sessions")
    assert response.status_code == 200
    [listed] = response.json()
    assert listed["session_id"] == harness.session.session_id
    assert listed["open"] is True
    assert listed["title"] == "scenario"


async def test_create_session_opens_one_on_a_directory(harness: Harness, tmp_path: Path) -> None:
    project = tmp_path / "other"
    project.mkdir()
    body = {"project": str(project), "model": "ollama:llama3", "title": "second"}
    response = await harness.client.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["project_root"] == str(project.resolve())
    assert harness.loomkin.stored_session(created["session_id"]).open


async def test_create_session_refuses_a_missing_directory(harness: Harness, tmp_path: Path) -> None:
    body = {"project": str(tmp_path / "nope"), "model": "ollama:llama3"}
    response = await harness.client.post("/api/sessions", json=body)
    assert response.status_code == 422
    assert "does not exist" in response.json()["detail"]


async def test_create_session_refuses_an_unknown_provider(harness: Harness, tmp_path: Path) -> None:
    response = await harness.client.post(
        "/api/sessions", json={"project": str(tmp_path), "model": "nosuch:model"}
    )
    assert response.status_code == 422
    assert "nosuch" in response.json()["detail"]


async def test_create_session_validates_the_body(harness: Harness) -> None:
    for body in ({}, {"project": "", "model": "x:y"}, {"project": ".", "model": "x:y", "zz": 1}):
        response = await harness.client.post("/api/sessions", json=body)
        assert response.status_code == 422, body
        assert response.json()["errors"], body
    bad_json = await harness.client.post(
        "/api/sessions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422


async def test_session_detail_has_agents_teams_tasks_budgets_and_prompts(harness: Harness) -> None:
    await harness.wait_prompt()
    response = await harness.client.get(harness.base)
    assert response.status_code == 200
    detail = response.json()
    names = {a["name"]: a for a in detail["agents"]}
    assert set(names) == {"concierge", "orienter", "alice"}
    assert names["alice"]["team_name"] == "build"
    assert names["alice"]["status"] == "waiting_permission"
    assert names["alice"]["task_title"] == "Write hello.py"
    teams = {t["name"]: t for t in detail["teams"]}
    assert teams["build"]["parent_team_id"] == teams["root"]["team_id"]
    assert teams["build"]["team_id"] in teams["root"]["child_ids"]
    titles = {t["task_id"]: t["title"] for t in detail["tasks"]}
    [edge] = detail["dependencies"]
    assert (titles[edge["task_id"]], titles[edge["depends_on"]]) == (
        "Review hello.py",
        "Write hello.py",
    )
    assert edge["kind"] == "blocks"
    scopes = [(b["scope"], b["name"]) for b in detail["budgets"]]
    assert scopes[0] == ("session", "session")
    assert ("team", "build") in scopes
    [prompt] = detail["permissions"]
    assert prompt["agent"] == "alice"
    assert prompt["tool"] == "file_write"
    assert prompt["category"] == "write"
    assert prompt["arguments"] == {"path": "hello.py", "content": "print('hello')\n"}
    assert prompt["target"].endswith("hello.py")
    assert detail["working"] >= 1


async def test_budgets_show_the_configured_limits(harness: Harness) -> None:
    from loomkin import Budgets

    await harness.session.set_budgets(Budgets(session_usd=2.0, team_tokens=99))
    detail = (await harness.client.get(harness.base)).json()
    session_budget = detail["budgets"][0]
    assert session_budget["limit_usd"] == 2.0
    assert all(b["limit_tokens"] == 99 for b in detail["budgets"][1:])


async def test_unknown_session_is_404(harness: Harness) -> None:
    for path in ("/api/sessions/nope", "/api/sessions/nope/summary", "/api/sessions/nope/feed"):
        response = await harness.client.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]


async def test_summary(harness: Harness) -> None:
    await harness.wait_prompt()
    response = await harness.client.get(f"{harness.base}/summary")
    assert response.status_code == 200
    summary = response.json()
    assert summary["model_calls"] >= 1
    assert summary["tasks"] == {"in_progress": 1, "pending": 1}


async def test_send_message_to_the_concierge(harness: Harness) -> None:
    await harness.wait_prompt()
    response = await harness.client.post(f"{harness.base}/messages", json={"text": "status?"})
    assert response.status_code == 202
    assert response.json()["message_id"].startswith("msg_")
    to_alice = await harness.client.post(
        f"{harness.base}/messages", json={"text": "hi", "to": "alice"}
    )
    assert to_alice.status_code == 202


async def test_send_message_refuses_bad_input(harness: Harness) -> None:
    for body in ({"text": ""}, {"text": "   "}, {}, {"text": "x", "extra": 1}, {"text": 3}):
        response = await harness.client.post(f"{harness.base}/messages", json=body)
        assert response.status_code == 422, body
    unknown = await harness.client.post(
        f"{harness.base}/messages", json={"text": "hi", "to": "zed"}
    )
    assert unknown.status_code == 404
    assert "zed" in unknown.json()["detail"]
