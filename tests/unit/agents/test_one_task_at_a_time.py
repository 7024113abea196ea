"""An agent works on one task at a time: a second assignment waits until the first is over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import TaskStatusChanged
from loomkin.testing.models import Call, FunctionModel, Reply

from .conftest import Gate, make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.llm.model import ModelRequest
    from loomkin.service import Loomkin


def worker(request: ModelRequest) -> Reply:
    """Gate first on 'first', then complete; complete 'second' at once; then say done."""
    brief_at = max(
        i
        for i, m in enumerate(request.messages)
        if isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
    )
    title = request.messages[brief_at].text  # type: ignore[union-attr]  # a UserMessage
    answered = sum(1 for m in request.messages[brief_at:] if isinstance(m, AssistantMessage))
    steps = [Reply(tool_calls=[Call("gate")])] if "first" in title else []
    steps += [
        Reply(tool_calls=[Call("task_complete", {"result": "done"})]),
        Reply(text="finished"),
    ]
    return steps[min(answered, len(steps) - 1)]


async def test_a_second_assignment_starts_only_after_the_first_task(
    lk: Loomkin, project: Path
) -> None:
    rig = await make_rig(lk, project, FunctionModel(worker))
    gate = Gate()
    gate.install(rig.agent)
    session = rig.session
    first = await session.create_task("first")
    second = await session.create_task("second")
    await session.assign_task(first, "worker", by="lead")
    await rig.wait_for("tool_call_started", lambda e: getattr(e, "tool", "") == "gate")
    await session.assign_task(second, "worker", by="lead")  # assigned while the first runs
    gate.opened.set()
    await lk.wait_idle()
    history = [
        (e.task_id, e.status)
        for e in await rig.events("task_status_changed")
        if isinstance(e, TaskStatusChanged)
    ]
    assert history == [
        (first, "in_progress"),
        (first, "completed"),
        (second, "in_progress"),
        (second, "completed"),
    ]
    assert session.task(second).status == "completed"
