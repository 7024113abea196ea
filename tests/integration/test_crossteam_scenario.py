"""Issue #5 (epic 6.7), end to end: a root team, two sibling teams and a grandchild team.

Scripted models stand in for the LLM; everything else is the real runtime. The scripts read
the transcript the runtime built (as the demo's do) and act like capable agents would:

* root/boss (lead) asks api/alice a question; the answer is routed back to boss.
* web/wes reads the api team's board and creates a task that depends on alice's task; it is
  assigned to wes only when alice completes hers.
* api/alice tells web/wes about the endpoint directly (sibling to sibling, not via boss).
* db/dora (the grandchild team, under api) shares a blocker: it reaches api, not root; her
  message to the web team (not a neighbour of db) is refused by the policy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import MessageSent, TaskAssigned, TaskStatusChanged, ToolCallCompleted
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply, StepFunction

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.events import JSON
    from loomkin.llm.model import Model, ModelRequest

pytestmark = pytest.mark.looptime


def _inputs(request: ModelRequest) -> str:
    return "\n".join(m.text for m in request.messages if isinstance(m, UserMessage))


def _done(request: ModelRequest) -> list[str]:
    return [m.name for m in request.messages if isinstance(m, ToolResultMessage)]


def _results(request: ModelRequest, name: str) -> str:
    return "\n".join(
        m.content for m in request.messages if isinstance(m, ToolResultMessage) and m.name == name
    )


def _said(request: ModelRequest, text: str) -> bool:
    return any(isinstance(m, AssistantMessage) and text in m.text for m in request.messages)


def _boss(request: ModelRequest) -> Reply:
    if "ask_question" not in _done(request):
        question: dict[str, JSON] = {
            "to": "api/alice",
            "question": "Which port does the API listen on?",
        }
        return Reply(tool_calls=[Call("ask_question", question)])
    if "Answer to your question" in _inputs(request):
        return Reply(text="Noted: the API listens on 8080.")
    return Reply(text="Waiting for alice's answer.")


def _alice(request: ModelRequest) -> Reply:
    seen, done = _inputs(request), _done(request)
    asked = re.search(r"question id (q_[^;\s]+);", seen)
    if asked and "answer_question" not in done:
        answer: dict[str, JSON] = {"question_id": asked.group(1), "answer": "8080"}
        return Reply(tool_calls=[Call("answer_question", answer)])
    if "[Task assigned] publish the auth endpoint" not in seen:
        return Reply(text="Noted.")
    if "peer_message" not in done:
        note: dict[str, JSON] = {
            "to": "web/wes",
            "content": "POST /login is coming; build the form against it.",
        }
        return Reply(tool_calls=[Call("peer_message", note)])
    if "task_complete" not in done:
        return Reply(tool_calls=[Call("task_complete", {"result": "POST /login published"})])
    return Reply(text="Endpoint published.")


def _wes(request: ModelRequest) -> Reply:
    seen, done = _inputs(request), _done(request)
    if "[Task assigned] build the login form" in seen:
        if "task_complete" not in done:
            return Reply(tool_calls=[Call("task_complete", {"result": "login form built"})])
        return Reply(text="Form built.")
    if "task_list" not in done:
        return Reply(tool_calls=[Call("task_list", {"team": "api"})])
    upstream = re.search(r"(task_\S+) 'publish the auth endpoint'", _results(request, "task_list"))
    if "task_create" not in done and upstream:
        task: dict[str, JSON] = {"title": "build the login form", "depends_on": [upstream.group(1)]}
        return Reply(tool_calls=[Call("task_create", task)])
    if not _said(request, "My form waits"):
        return Reply(text="My form waits for the api team's endpoint.")
    return Reply(text="Still waiting.")


def _dora(request: ModelRequest) -> Reply:
    if "share_insight" not in _done(request):
        blocker: dict[str, JSON] = {
            "kind": "blocker",
            "content": "The users table migration is locked.",
        }
        return Reply(tool_calls=[Call("share_insight", blocker)])
    if "peer_message" not in _done(request):
        hello: dict[str, JSON] = {"to": "web/wes", "content": "Do you need the users table?"}
        return Reply(tool_calls=[Call("peer_message", hello)])
    return Reply(text="Reported.")


def _ok(_request: ModelRequest) -> Reply:
    return Reply(text="ok")


SCRIPTS: dict[str, tuple[StepFunction, float]] = {
    "boss": (_boss, 0.0),
    "alice": (_alice, 5.0),  # the endpoint takes a while to build (virtual seconds)
    "wes": (_wes, 0.0),
    "dora": (_dora, 0.0),
}


async def test_teams_of_teams_coordinate_across_the_tree(tmp_path: Path) -> None:
    models: dict[str, FunctionModel] = {}

    def factory(_role: Role, name: str) -> Model:
        if name not in models:
            fn, latency = SCRIPTS.get(name, (_ok, 0.0))
            models[name] = FunctionModel(fn, name=f"scripted:{name}", latency_s=latency)
        return models[name]

    (tmp_path / "project").mkdir()
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            tmp_path / "project",
            model_factory=factory,
            settings=SessionSettings(bootstrap_orienter=False),
        )
        await session.spawn_agent("boss", "lead")
        await session.create_team("api")
        web = await session.create_team("web")
        await session.create_team("db", parent="api")
        alice = await session.spawn_agent("alice", "coder", team="api")
        wes = await session.spawn_agent("wes", "coder", team="web")
        dora = await session.spawn_agent("dora", "coder", team="db")
        upstream = await session.create_task("publish the auth endpoint", team="api")

        for name in ("root/boss", "web/wes", "db/dora"):
            await session.send("go", to=name)
        await lk.wait_idle()

        events = [r.event for r in await session.history()]
        seen = {name: "\n".join(_inputs(r) for r in m.requests) for name, m in models.items()}

        # A parent asks a child team's agent and gets the answer back.
        assert "Which port does the API listen on?" in seen["alice"]
        assert "Answer to your question 'Which port does the API listen on?':\n8080" in seen["boss"]

        # Sibling to sibling, without the lead: alice tells wes, wes depends on alice's task.
        assert "POST /login is coming" in seen["wes"]
        assert "POST /login" not in seen["boss"]
        sent = [e for e in events if isinstance(e, MessageSent)]
        peer = [e for e in sent if e.msg_type == "peer_message"]
        assert [(e.from_agent, e.to_agent) for e in peer] == [(alice.agent_id, wes.agent_id)]

        # The dependency on the sibling team's task: assigned only once alice's task completed.
        (form,) = [
            t for t in session.tasks() if t.team_id == web and t.title == "build the login form"
        ]
        assert form.status == "completed"
        assert session.task(upstream).status == "completed"
        order = [
            ("done", e.task_id) if isinstance(e, TaskStatusChanged) else ("assigned", e.task_id)
            for e in events
            if (isinstance(e, TaskStatusChanged) and e.status == "completed")
            or isinstance(e, TaskAssigned)
        ]
        assert order.index(("done", upstream)) < order.index(("assigned", form.task_id))

        # The grandchild's blocker climbs one level (to api), not to the root team.
        assert "Blocker from team 'db' (one level below yours), shared by dora" in seen["alice"]
        assert "migration is locked" not in seen["boss"]
        assert "migration is locked" not in seen["wes"]

        # The policy refuses db → web (not neighbours), readably, and nothing is sent.
        refused = [
            e
            for e in events
            if isinstance(e, ToolCallCompleted)
            and e.agent_id == dora.agent_id
            and e.tool == "peer_message"
        ]
        assert len(refused) == 1
        assert refused[0].is_error
        assert "team 'db' may not message team 'web'" in refused[0].result
        assert "Do you need the users table?" not in seen["wes"]
