"""Issue #5 (epic 6.7): cross-team discovery, messages, broadcasts, questions, findings, policy.

The tests run the real runtime on a small team tree whose agents' models only say "ok".
Tools are called directly (as the loop would) and what each agent's model was shown is read
from the requests its model received, so a test asserts on what an agent actually saw.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.roles import BUILTIN_ROLES
from loomkin.agents.tools import CATALOGUE
from loomkin.core.chat import ToolCall, UserMessage
from loomkin.core.events import MessageSent, QuestionAsked, QuestionForwarded, ToolCallCompleted
from loomkin.errors import ConfigError, PolicyRefused, ToolError
from loomkin.service import Loomkin, Session
from loomkin.service.config import parse_config
from loomkin.service.options import session_options
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Call, FunctionModel, Reply, StepFunction

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.agent import Agent
    from loomkin.agents.roles import Role
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.events import JSON, Event
    from loomkin.ids import TeamId
    from loomkin.llm.model import Model, ModelRequest


def _ok(_request: ModelRequest) -> Reply:
    return Reply(text="ok")


@dataclass
class World:
    """One session whose agents' models are recorded by agent name."""

    lk: Loomkin
    session: Session
    models: dict[str, FunctionModel]
    scripts: dict[str, StepFunction] = field(default_factory=dict)

    @property
    def rt(self) -> SessionRuntime:
        return session_runtime(self.session)

    @property
    def root(self) -> TeamId:
        return self.rt.root_team_id

    async def team(self, name: str, parent: TeamId, *, purpose: str = "") -> TeamId:
        return await self.session.create_team(name, parent=parent, purpose=purpose)

    async def agent(self, team_id: TeamId, name: str, role: str = "coder") -> Agent:
        member = await self.rt.teams.spawn_agent(team_id, name, role)
        return self.rt.agent(member.agent_id)

    async def call(self, agent: Agent, tool_name: str, **args: JSON) -> str:
        """Run one tool as ``agent`` would; errors propagate as exceptions."""
        tool = CATALOGUE.get(tool_name)
        assert tool_name in agent.tools, f"{agent.role.name} lacks {tool_name}"
        ctx = agent.tool_context(ToolCall(call_id="call_test", name=tool_name, arguments=""))
        return await tool.run(tool.parse_args(json.dumps(args)), ctx, agent.ctx)

    def seen(self, name: str) -> str:
        """Every system/peer/user text the agent's model was shown, in order, de-duplicated."""
        texts: list[str] = []
        model = self.models.get(name)
        for request in model.requests if model else []:
            for message in request.messages:
                if isinstance(message, UserMessage) and message.text not in texts:
                    texts.append(message.text)
        return "\n---\n".join(texts)

    async def events(self, *kinds: str) -> list[Event]:
        recorded = await self.session.history()
        return [r.event for r in recorded if not kinds or r.event.kind in kinds]


async def open_world(
    lk: Loomkin,
    project: Path,
    *,
    settings: SessionSettings | None = None,
    scripts: dict[str, StepFunction] | None = None,
) -> World:
    """Open a session whose agents reply "ok" unless ``scripts`` names them."""
    models: dict[str, FunctionModel] = {}
    chosen = scripts or {}

    def factory(_role: Role, name: str) -> Model:
        if name not in models:
            models[name] = FunctionModel(chosen.get(name, _ok), name=f"function:{name}")
        return models[name]

    session = await lk.open_session(
        project,
        model_factory=factory,
        settings=settings or SessionSettings(bootstrap_orienter=False),
    )
    return World(lk=lk, session=session, models=models, scripts=chosen)


# -- the tests ------------------------------------------------------------------------------------


async def tree(world: World) -> tuple[TeamId, TeamId, TeamId, TeamId]:
    """root ─┬─ backend ── db      (grandchild)
    ├─ frontend
    └─ docs
    """
    backend = await world.team("backend", world.root, purpose="the API")
    frontend = await world.team("frontend", world.root)
    docs = await world.team("docs", world.root)
    db = await world.team("db", backend)
    return backend, frontend, docs, db


async def test_list_teams_shows_parent_siblings_children_with_members_and_tasks(
    lk: Loomkin, project: Path
) -> None:
    world = await open_world(lk, project)
    backend, frontend, _docs, db = await tree(world)
    await world.agent(world.root, "boss", "lead")
    api = await world.agent(backend, "api", "lead")
    await world.agent(frontend, "ui")
    await world.agent(db, "dba")
    await world.session.create_task("build the form", team=frontend, assign_to="frontend/ui")

    text = await world.call(api, "list_teams")

    parent, siblings, children = (
        text.split("## Parent team")[1].split("## Sibling teams")[0],
        text.split("## Sibling teams")[1].split("## Child teams")[0],
        text.split("## Child teams")[1],
    )
    assert "boss (lead" in parent
    assert "frontend" in siblings
    assert "docs" in siblings
    assert "no agents" in siblings
    assert "ui (coder" in siblings
    assert "'build the form'" in siblings
    assert "db (id" in children
    assert "dba (coder" in children
    assert "backend" not in siblings
    assert "team/name" in text


async def test_message_between_siblings_reaches_no_agent_of_a_third_team(
    lk: Loomkin, project: Path
) -> None:
    world = await open_world(lk, project)
    backend, frontend, docs, _db = await tree(world)
    api = await world.agent(backend, "api")
    await world.agent(frontend, "ui")
    await world.agent(frontend, "ux")
    await world.agent(docs, "writer")
    await world.agent(world.root, "boss", "lead")

    result = await world.call(api, "peer_message", to="frontend/ui", content="the schema is ready")
    await world.call(api, "peer_message", to="team:frontend", content="v2 endpoint is live")
    await lk.wait_idle()

    assert result == "Sent to frontend/ui."
    assert "the schema is ready" in world.seen("ui")
    assert "the schema is ready" not in world.seen("ux")
    assert "v2 endpoint is live" in world.seen("ux")
    assert "v2 endpoint is live" in world.seen("ui")
    assert "[Message from api (team " in world.seen("ui")
    for outsider in ("writer", "boss", "api"):
        assert world.seen(outsider) == ""
    sent = await world.events("message_sent")
    assert len(sent) == 2


async def test_broadcasts_reach_every_child_or_sibling_team(lk: Loomkin, project: Path) -> None:
    world = await open_world(lk, project)
    backend, frontend, docs, db = await tree(world)
    boss = await world.agent(world.root, "boss", "lead")
    api = await world.agent(backend, "api")
    ui = await world.agent(frontend, "ui")
    await world.agent(docs, "writer")
    dba = await world.agent(db, "dba")

    to_children = await world.call(boss, "broadcast", to="children", content="freeze at noon")
    to_siblings = await world.call(ui, "broadcast", to="siblings", content="new tokens")
    await lk.wait_idle()

    assert to_children == "Sent to every agent of 3 child team(s): backend, frontend, docs."
    assert to_siblings == "Sent to every agent of 2 sibling team(s): backend, docs."
    for name in ("api", "ui", "writer"):
        assert "freeze at noon" in world.seen(name)
    assert "freeze at noon" not in world.seen("dba")  # a grandchild is not a child
    assert "new tokens" in world.seen("api")
    assert "new tokens" in world.seen("writer")
    assert "new tokens" not in world.seen("ui")  # no echo to the sender's own team
    assert "new tokens" not in world.seen("boss")
    with pytest.raises(ToolError, match="no child teams"):
        await world.call(dba, "broadcast", to="children", content="x")
    with pytest.raises(ToolError, match="no sibling teams"):
        await world.call(boss, "broadcast", to="siblings", content="x")
    del api


def _message_each_other(other: str) -> StepFunction:
    def step(request: ModelRequest) -> Reply:
        if len(request.messages) <= 2:
            return Reply(tool_calls=[Call("peer_message", {"to": other, "content": "ping"})])
        return Reply(text="done")

    return step


async def test_two_agents_messaging_each_other_in_the_same_step_do_not_deadlock(
    lk: Loomkin, project: Path
) -> None:
    scripts = {"left": _message_each_other("right/b"), "b": _message_each_other("left/left")}
    world = await open_world(lk, project, scripts=scripts)
    left_team = await world.team("left", world.root)
    right_team = await world.team("right", world.root)
    await world.agent(left_team, "left")
    await world.agent(right_team, "b")

    await world.session.send("start", to="left/left")
    await world.session.send("start", to="right/b")
    await lk.wait_idle()

    finished = await world.events("loop_finished")
    assert len(finished) >= 2
    assert "ping" in world.seen("left")
    assert "ping" in world.seen("b")
    results = [
        e for e in await world.events("tool_call_completed") if isinstance(e, ToolCallCompleted)
    ]
    assert [r.result for r in results] == ["Sent to right/b.", "Sent to left/left."] or [
        r.result for r in results
    ] == ["Sent to left/left.", "Sent to right/b."]


async def test_policy_refuses_distant_teams_unless_allowed(lk: Loomkin, project: Path) -> None:
    world = await open_world(lk, project)
    backend, frontend, _docs, db = await tree(world)
    dba = await world.agent(db, "dba")
    await world.agent(frontend, "ui")

    with pytest.raises(PolicyRefused, match="team 'db' may not message team 'frontend'"):
        await world.call(dba, "peer_message", to="frontend/ui", content="hi")
    with pytest.raises(PolicyRefused, match=r"\[comms\] allow"):
        await world.call(dba, "ask_question", to="team:frontend", question="hi?")
    assert await world.events("message_sent") == []

    # Parent and grandparent relations: db → backend is allowed, db → root is not.
    await world.agent(backend, "api")
    assert await world.call(dba, "peer_message", to="backend/api", content="hi") == (
        "Sent to backend/api."
    )


async def test_allowed_pair_and_open_policy(lk: Loomkin, project: Path) -> None:
    allow = SessionSettings(bootstrap_orienter=False, comms_allow=frozenset({("frontend", "db")}))
    world = await open_world(lk, project, settings=allow)
    _backend, frontend, _docs, db = await tree(world)
    dba = await world.agent(db, "dba")
    await world.agent(frontend, "ui")
    assert await world.call(dba, "peer_message", to="frontend/ui", content="hi") == (
        "Sent to frontend/ui."
    )

    open_world_ = await open_world(
        lk, project, settings=SessionSettings(bootstrap_orienter=False, comms_policy="open")
    )
    _b, f2, _d, db2 = await tree(open_world_)
    dba2 = await open_world_.agent(db2, "dba2")
    await open_world_.agent(f2, "ui2")
    assert await open_world_.call(dba2, "peer_message", to="team:frontend", content="hi") == (
        "Sent to every agent of team frontend."
    )


async def test_parent_asks_a_child_agent_and_gets_the_answer(lk: Loomkin, project: Path) -> None:
    world = await open_world(lk, project)
    backend, *_ = await tree(world)
    boss = await world.agent(world.root, "boss", "lead")
    api = await world.agent(backend, "api")

    asked = await world.call(boss, "ask_question", to="backend/api", question="Which port?")
    (question,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    assert question.question_id in asked
    await world.call(api, "answer_question", question_id=question.question_id, answer="8080")
    await lk.wait_idle()

    assert "Which port?" in world.seen("api")
    assert "Answer to your question 'Which port?':\n8080" in world.seen("boss")
    assert not world.rt.ctx.questions.is_open(question.question_id)


@pytest.mark.looptime
async def test_an_unanswered_question_expires_with_a_clear_notice(
    lk: Loomkin, project: Path
) -> None:
    settings = SessionSettings(bootstrap_orienter=False, question_timeout_s=30.0)
    world = await open_world(lk, project, settings=settings)
    backend, *_ = await tree(world)
    boss = await world.agent(world.root, "boss", "lead")
    await world.agent(backend, "api")

    await world.call(boss, "ask_question", to="team:backend", question="Who owns auth?")
    await asyncio.sleep(31)
    await lk.wait_idle()

    assert len(await world.events("question_expired")) == 1
    assert "No answer to your question 'Who owns auth?' within 30 s" in world.seen("boss")


async def test_a_forwarded_question_is_answered_to_the_original_asker(
    lk: Loomkin, project: Path
) -> None:
    world = await open_world(lk, project)
    backend, _frontend, _docs, db = await tree(world)
    boss = await world.agent(world.root, "boss", "lead")
    api = await world.agent(backend, "api")
    dba = await world.agent(db, "dba")

    await world.call(boss, "ask_question", to="backend/api", question="Index on users.email?")
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    qid = asked.question_id
    with pytest.raises(ToolError, match="not addressed to you"):
        await world.call(dba, "forward_question", question_id=qid, to="backend/api")
    result = await world.call(
        api, "forward_question", question_id=qid, to="db/dba", note="you own the schema"
    )
    assert result == f"Forwarded question {qid} to db/dba (hop 1 of 5)."
    await world.call(dba, "answer_question", question_id=qid, answer="yes, unique")
    await lk.wait_idle()

    seen = world.seen("dba")
    assert "Index on users.email?" in seen
    assert "from root/boss, forwarded by backend/api" in seen.replace(
        world.rt.ctx.state.team(world.root).name, "root"
    )
    assert "Note from api: you own the schema" in seen
    assert "Answer to your question 'Index on users.email?':\nyes, unique" in world.seen("boss")
    (forwarded,) = [
        e for e in await world.events("question_forwarded") if isinstance(e, QuestionForwarded)
    ]
    assert forwarded.hops == ("backend/api",)


async def test_forwarding_beyond_the_hop_limit_is_refused(lk: Loomkin, project: Path) -> None:
    settings = SessionSettings(bootstrap_orienter=False, max_question_hops=2)
    world = await open_world(lk, project, settings=settings)
    backend, *_ = await tree(world)
    boss = await world.agent(world.root, "boss", "lead")
    a = await world.agent(backend, "a")
    b = await world.agent(backend, "b")

    await world.call(boss, "ask_question", to="backend/a", question="?")
    (asked,) = [e for e in await world.events("question_asked") if isinstance(e, QuestionAsked)]
    qid = asked.question_id
    await world.call(a, "forward_question", question_id=qid, to="b")
    await world.call(b, "forward_question", question_id=qid, to="a")
    with pytest.raises(ToolError, match=r"already been forwarded 2 times \(the limit is 2\)"):
        await world.call(a, "forward_question", question_id=qid, to="b")
    assert world.rt.ctx.questions.open_question(qid).hops == ("backend/a", "backend/b")


async def test_findings_reach_the_team_and_climb_the_configured_depth(
    lk: Loomkin, project: Path
) -> None:
    world = await open_world(lk, project)
    backend, frontend, _docs, db = await tree(world)
    await world.agent(world.root, "boss", "lead")
    await world.agent(backend, "api")
    await world.agent(frontend, "ui")
    await world.agent(db, "dlead", "lead")
    dba = await world.agent(db, "dba")
    await world.agent(db, "dbb")

    result = await world.call(dba, "share_insight", kind="blocker", content="migrations lock")
    await lk.wait_idle()

    assert result == (
        "Recorded the blocker in your team's knowledge; sent it to dlead, whose work it "
        "concerns; it climbed to team 'backend'."
    )
    assert "migrations lock" in world.seen("dlead")  # a blocker always reaches the team's lead
    assert "migrations lock" not in world.seen("dbb")  # targeted, not broadcast to the team
    assert (
        "Blocker from team 'db' (one level below yours), shared by dba:\nmigrations lock"
        in world.seen("api")
    )
    assert "migrations lock" not in world.seen("boss")  # default depth: one level
    assert world.seen("dba") == world.seen("ui") == ""

    result = await world.call(dba, "share_insight", kind="warning", content="disk", depth=2)
    await lk.wait_idle()
    assert "Warning from team 'db' (2 levels below yours)" in world.seen("boss")
    sent = [e for e in await world.events("message_sent") if isinstance(e, MessageSent)]
    assert [(e.data and e.data["kind"], e.data and e.data["levels"]) for e in sent] == [
        ("blocker", 0),
        ("blocker", 1),
        ("warning", 0),
        ("warning", 1),
        ("warning", 2),
    ]
    assert {e.msg_type for e in sent} == {"insight"}


async def test_propagation_depth_comes_from_loomkin_toml(lk: Loomkin, project: Path) -> None:
    config = parse_config("[comms]\npropagation_depth = 2\n")
    settings = session_options(config).settings
    assert settings.propagation_depth == 2
    assert SessionSettings().propagation_depth == 1
    with pytest.raises(ConfigError, match=r"comms\.propagation_depth"):
        parse_config('[comms]\npropagation_depth = "2"\n')

    world = await open_world(lk, project, settings=replace(settings, bootstrap_orienter=False))
    _backend, _f, _d, db = await tree(world)
    await world.agent(world.root, "boss", "lead")
    dba = await world.agent(db, "dba")
    await world.call(dba, "share_insight", kind="discovery", content="cache hit rate 3%")
    await lk.wait_idle()
    assert "Discovery from team 'db' (2 levels below yours)" in world.seen("boss")


async def test_team_spawn_from_a_sub_team_nests_up_to_the_depth_limit(
    lk: Loomkin, project: Path
) -> None:
    settings = SessionSettings(bootstrap_orienter=False, max_team_depth=2)
    world = await open_world(lk, project, settings=settings)
    backend = await world.team("backend", world.root)
    lead = await world.agent(backend, "blead", "lead")

    roles: list[JSON] = [{"name": "dba", "role": "coder"}]
    text = await world.call(lead, "team_spawn", team_name="db", roles=roles)
    (db,) = world.rt.ctx.state.children(backend)
    assert db.name == "db"
    assert db.depth == 2
    assert world.rt.ctx.state.parent(db.team_id) == world.rt.ctx.state.team(backend)
    assert "Created team 'db'" in text

    sub_lead = await world.agent(db.team_id, "dlead", "lead")
    with pytest.raises(PolicyRefused, match="beyond the team depth limit of 2"):
        await world.call(sub_lead, "team_spawn", team_name="deeper", roles=roles)


def test_every_worker_role_can_use_the_cross_team_tools() -> None:
    for name in ("lead", "coder", "tester", "reviewer", "researcher", "concierge", "orienter"):
        role = BUILTIN_ROLES[name]
        for tool_name in ("broadcast", "forward_question", "share_insight", "list_teams"):
            assert tool_name in role.tools, (name, tool_name)
            assert tool_name in CATALOGUE
        assert "share_insight" in role.system_prompt(agent_name="x", team_name="t", project="p")
