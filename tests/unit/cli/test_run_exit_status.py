"""``loomkin run`` exits 1 when an agent's work ended in an error, so scripts can tell.

Before, a run whose every model call failed (no server behind ``--model``, a rejected key)
printed its summary and exited 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.cli.outcome import failed_agents
from loomkin.cli.sessions import drive
from loomkin.core.events import AgentSpawned, LoopFinished
from loomkin.errors import ProviderError
from loomkin.ids import AgentId
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.llm.model import ModelRequest

pytestmark = pytest.mark.looptime

SETTINGS = SessionSettings(bootstrap_orienter=False)


async def _refused(_request: ModelRequest) -> Reply:
    raise ProviderError("ollama:x: HTTP 401: the API key was rejected")


async def _fine(_request: ModelRequest) -> Reply:
    return Reply(text="done")


@pytest.mark.parametrize(("answer", "status"), [(_refused, 1), (_fine, 0)])
async def test_the_exit_status_says_whether_the_agents_work_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: object, status: int
) -> None:
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            tmp_path,
            model_factory=lambda _r, name: FunctionModel(answer, name=f"fn:{name}"),  # type: ignore[arg-type]
            settings=SETTINGS,
        )
        assert await drive(session, "do it") == status
    out = capsys.readouterr().out
    assert ("failed concierge: The model provider failed" in out) == (status == 1)


def test_an_agent_whose_failed_loop_ran_again_to_an_answer_has_not_failed() -> None:
    ann, ben = AgentId("agent_ann"), AgentId("agent_ben")
    events = [
        AgentSpawned(
            session_id="s", agent_id=ann, name="ann", role="coder", team_id="t", model="m"
        ),
        AgentSpawned(
            session_id="s", agent_id=ben, name="ben", role="coder", team_id="t", model="m"
        ),
        LoopFinished(session_id="s", agent_id=ann, outcome="error", text="provider down"),
        LoopFinished(session_id="s", agent_id=ben, outcome="error", text="provider down"),
        LoopFinished(session_id="s", agent_id=ann, outcome="final", text="done"),
        LoopFinished(session_id="s", agent_id=ben, outcome="cancelled"),
    ]
    assert failed_agents(events) == []
    assert failed_agents(events[:4]) == [("ann", "provider down"), ("ben", "provider down")]
