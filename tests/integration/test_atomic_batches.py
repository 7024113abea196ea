"""Issue #15: a decision of several events is stored as one batch, on SQLite and on Postgres.

Events appended together share their record time and sit at consecutive positions; the store
writes such a batch in one transaction (all or none: the conformance suite). Read back from
the store, the events of each decision below are one batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.service import Loomkin
from loomkin.testing.models import Call, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import RecordedEvent

pytestmark = pytest.mark.timeout(60)

LONG = "".join(f"word{i:02d} " for i in range(60))


def batch_of(log: list[RecordedEvent], kind: str, **fields: object) -> list[str]:
    """The kinds of the stored batch holding the first event of ``kind`` with ``fields``."""
    at = next(
        i
        for i, r in enumerate(log)
        if r.event.kind == kind and all(getattr(r.event, k) == v for k, v in fields.items())
    )
    stamp = log[at].recorded_at
    first, last = at, at
    while first > 0 and log[first - 1].recorded_at == stamp:
        first -= 1
    while last + 1 < len(log) and log[last + 1].recorded_at == stamp:
        last += 1
    return [r.event.kind for r in log[first : last + 1]]


async def test_decisions_are_stored_as_one_batch(store_url: str, project: Path) -> None:
    (project / "README.md").write_text("# hi\n")
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("file_read", {"path": "README.md"})]),
            Reply(text=LONG),
            Reply(text="done"),
        ],
        chunk_chars=4,
    )
    async with await Loomkin.open(store_url) as lk:
        session = await lk.open_session(
            project,
            model_factory=lambda _r, _n: model,
            settings=SessionSettings(bootstrap_orienter=False),
        )
        await session.spawn_agent("worker", "coder")
        await session.create_task("write it", assign_to="worker")
        async with session.events(after=0) as events:
            async for recorded in events:
                if recorded.event.kind == "tool_call_completed":
                    break
        await session.pause("worker")
        await session.wait_idle()
        await session.cancel("worker")
        await session.wait_idle()
        log = await session.history()
    assert batch_of(log, "task_created") == [
        "task_created",
        "task_assigned",
        "negotiation_opened",  # the assignee's window to negotiate, with the assignment
        "message_sent",
    ]
    assert batch_of(log, "tool_call_started") == ["tool_call_started", "agent_status_changed"]
    assert batch_of(log, "tool_call_completed") == [
        "tool_call_completed",
        "agent_status_changed",
        "transcript_appended",
    ]
    assert batch_of(log, "control_applied", action="pause") == [
        "control_applied",
        "agent_status_changed",
        "task_status_changed",  # the agent's task is paused with it
    ]
    assert batch_of(log, "control_applied", action="cancel") == [
        "control_applied",
        "agent_status_changed",
        "task_status_changed",
    ]
