"""Topics: a message to "topic:<name>" reaches exactly the agents that follow it (SPEC §3.5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import UserMessage
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest

SETTINGS = SessionSettings(bootstrap_orienter=False)


def scripted(name: str, seen: dict[str, list[str]]) -> Model:
    """Follow 'schema' (ann and cy), then post to it (ben), recording what each one reads."""

    def fn(request: ModelRequest) -> Reply:
        texts = [m.text for m in request.messages if isinstance(m, UserMessage)]
        seen.setdefault(name, []).extend(t for t in texts if "schema v2" in t)
        calls = sum(1 for m in request.messages if getattr(m, "kind", "") == "assistant")
        if texts and texts[-1].startswith("follow") and calls == 0:
            return Reply(tool_calls=[Call("follow_topic", {"topic": "schema"})])
        if texts and texts[-1].startswith("post") and calls == 0:
            content = "schema v2: users.email is unique"
            return Reply(
                tool_calls=[Call("peer_message", {"to": "topic:schema", "content": content})]
            )
        return Reply(text="ok")

    return FunctionModel(fn, name=f"function:{name}")


async def test_only_followers_receive_a_topic_message_even_across_teams_and_restarts(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    store = f"sqlite:///{tmp_path / 's.db'}"
    seen: dict[str, list[str]] = {}

    def factory(_role: Role, name: str) -> Model:
        return scripted(name, seen)

    async with await Loomkin.open(store) as lk:
        session = await lk.open_session(project, model_factory=factory, settings=SETTINGS)
        await session.create_team("api")
        await session.create_team("web")
        await session.spawn_agent("ann", "coder", team="api")
        await session.spawn_agent("ben", "coder", team="api")
        await session.spawn_agent("cy", "coder", team="web")
        await session.spawn_agent("dee", "coder", team="web")
        for follower in ("ann", "cy"):
            await session.send("follow the schema topic", to=follower)
        await session.wait_idle()
        topics = session_runtime(session).router
        assert topics.topics_of(session.agent("cy").agent_id) == ["schema"]
        session_id = session.session_id
    # The subscriptions are events: a restarted runtime still delivers to the followers.
    async with await Loomkin.open(store) as lk:
        session = await lk.resume_session(session_id, model_factory=factory, settings=SETTINGS)
        await session.send("post the schema change", to="ben")
        await session.wait_idle()
    assert seen.get("ann"), seen
    assert seen.get("cy"), seen  # a follower in another team
    assert not seen.get("dee"), "an agent that does not follow the topic got its message"
    assert not seen.get("ben"), "the sender got its own topic message back"


async def test_a_bad_topic_name_is_a_readable_error(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {}

    def fn(request: ModelRequest) -> Reply:
        if len(request.messages) == 2:
            return Reply(tool_calls=[Call("follow_topic", {"topic": "Bad Topic!"})])
        seen["result"] = [getattr(request.messages[-1], "content", "")]
        return Reply(text="ok")

    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            tmp_path, model_factory=lambda _r, _n: FunctionModel(fn), settings=SETTINGS
        )
        await session.spawn_agent("ann", "coder")
        await session.send("follow", to="ann")
        await session.wait_idle()
    assert "is not a topic name" in seen["result"][0]
