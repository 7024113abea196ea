"""Issue #22: compaction is a checkpoint like any other: pausable, and durable across a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.agents.settings import ContextSettings
from loomkin.core.chat import SystemMessage
from loomkin.core.events import AgentStatusChanged, ContextCompacted, ControlApplied
from loomkin.llm.caching import estimate_tokens
from loomkin.service import Loomkin
from loomkin.testing.internals import live_agent
from loomkin.testing.models import Call, FunctionModel, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

WINDOW = 6000
READS = 40
SETTINGS = SessionSettings(
    bootstrap_orienter=False,
    max_iterations=READS + 10,
    context=ContextSettings(window_tokens=WINDOW, keep_turns=2),
)


def project_with_files(root: Path) -> Path:
    for i in range(5):
        path = root / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"def f{j}(x):\n    return x * {j}\n" for j in range(50)))
    return root


class Reader:
    """Reads files READS times; the first summary request pauses the agent mid-compaction."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.calls = 0
        self.largest = 0

    async def __call__(self, request: ModelRequest) -> Reply:
        self.largest = max(self.largest, estimate_tokens(request))
        first = request.messages[0]
        if isinstance(first, SystemMessage) and first.text.startswith("You compact"):
            if self.session is not None:
                await self.session.pause("worker")  # asked while the compaction runs
                self.session = None
            return Reply(text="Read mod0..mod4 several times; nothing to change yet.")
        self.calls += 1
        if self.calls > READS:
            return Reply(text="All files read.")
        return Reply(tool_calls=[Call("file_read", {"path": f"mod{self.calls % 5}.py"})])


def factory_for(model: Model) -> object:
    idle = ScriptedModel([], name="scripted:idle")

    def factory(_role: Role, name: str) -> Model:
        return model if name == "worker" else idle

    return factory


async def wait_status(session: Session, status: str) -> None:
    async with session.events(after=0) as sub:
        async for recorded in sub:
            event = recorded.event
            if isinstance(event, AgentStatusChanged) and event.status == status:
                return


async def test_a_pause_during_compaction_lands_after_it_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    project = project_with_files(tmp_path / "project")
    url = f"sqlite:///{tmp_path}/s.db"
    reader = Reader()
    async with await Loomkin.open(url) as lk:
        session = await lk.open_session(
            project,
            model_factory=factory_for(FunctionModel(reader)),  # type: ignore[arg-type]
            settings=SETTINGS,
        )
        reader.session = session
        await session.spawn_agent("worker", "coder")
        await session.send("Read the modules; tell me about f7.", to="worker")
        await wait_status(session, "paused")
        await lk.wait_idle()
        before = list(live_agent(session, "worker").memory.transcript)
        calls_before = reader.calls
        events = [r.event for r in await session.history()]
        session_id = session.session_id
    compacted = [e for e in events if isinstance(e, ContextCompacted)]
    assert compacted
    assert compacted[-1].summarised  # the summary the pause was asked during
    applied = [e for e in events if isinstance(e, ControlApplied)]
    assert [(a.action, a.checkpoint) for a in applied] == [("pause", "before_model")]
    # Nothing ran after the compaction: the pause landed at the checkpoint right after it.
    assert isinstance(events[events.index(compacted[-1]) + 1], ControlApplied)

    async with await Loomkin.open(url) as lk:
        session = await lk.resume_session(
            session_id,
            model_factory=factory_for(FunctionModel(reader)),  # type: ignore[arg-type]
            settings=SETTINGS,
        )
        await lk.wait_idle()
        agent = live_agent(session, "worker")
        assert agent.memory.status == "paused"
        assert agent.memory.transcript == before  # the journal rebuilds the same transcript
        assert reader.calls == calls_before
        await session.resume("worker")
        await lk.wait_idle()
        assert reader.calls == READS + 1  # it carried on to its final answer
        assert reader.largest <= WINDOW
