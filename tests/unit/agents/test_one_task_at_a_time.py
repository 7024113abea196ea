"""An agent works on one task at a time: a second assignment waits until the first is over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import TaskStatusChanged
from loomkin.ids import TaskId
from loomkin.tasks import WorkerRef
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
    runtime = rig.session.runtime
    tasks = runtime.tasks
    team = runtime.root_team_id
    ref = WorkerRef(agent_id=rig.agent.agent_id, name="worker", team_id=team)
    first = await tasks.create(session_id=runtime.session_id, team_id=team, title="first")
    second = await tasks.create(session_id=runtime.session_id, team_id=team, title="second")
    await tasks.assign(first, ref, by="lead")
    await rig.wait_for("tool_call_started", lambda e: getattr(e, "tool", "") == "gate")
    await tasks.assign(second, ref, by="lead")  # assigned while the first still runs
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
    assert tasks.task(TaskId(second)).status == "completed"
