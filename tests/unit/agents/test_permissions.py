"""Issue #3: write and execute tools ask; allow once, deny and allow always do what they say."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentStatusChanged,
    PermissionRequested,
    PermissionResolved,
    ToolCallCompleted,
)
from loomkin.testing.models import Call, Reply, ScriptedModel

from .conftest import Rig, make_rig, nth_match

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.records import PermissionDecision
    from loomkin.service import Loomkin, PendingPermission


def write(path: str, content: str) -> Call:
    return Call("file_write", {"path": path, "content": content})


async def asked(rig: Rig, nth: int = 1) -> PermissionRequested:
    """Wait until the ``nth`` prompt is asked and the agent shows waiting_permission."""
    event = await rig.wait_for("permission_requested", nth_match(nth))
    assert isinstance(event, PermissionRequested)
    waiting = nth_match(
        nth, lambda e: isinstance(e, AgentStatusChanged) and e.status == "waiting_permission"
    )
    await rig.wait_for("agent_status_changed", waiting)
    assert rig.agent.memory.status == "waiting_permission"
    return event


async def test_write_asks_and_allow_once_runs_it(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(tool_calls=[write("new.txt", "hi\n")]), Reply(text="written")])
    rig = await make_rig(lk, project, model)
    await rig.send("write it")
    prompt = await asked(rig)
    assert (prompt.tool, prompt.category) == ("file_write", "write")
    assert prompt.target.endswith("new.txt")
    assert prompt.arguments == {"path": "new.txt", "content": "hi\n"}
    assert not (project / "new.txt").exists()
    (pending,) = rig.session.pending_permissions()
    assert (pending.request_id, pending.agent, pending.tool, pending.target) == (
        prompt.request_id,
        "worker",
        "file_write",
        prompt.target,
    )
    assert pending.arguments == {"path": "new.txt", "content": "hi\n"}
    await rig.session.answer_permission(prompt.request_id, "allow_once")
    await lk.wait_idle()
    assert (project / "new.txt").read_text() == "hi\n"
    (resolved,) = await rig.agent_events("permission_resolved")
    assert isinstance(resolved, PermissionResolved)
    assert (resolved.decision, resolved.decided_by) == ("allow_once", "user")
    (result,) = await rig.agent_events("tool_call_completed")
    assert isinstance(result, ToolCallCompleted)
    assert (result.outcome, result.is_error) == ("ok", False)
    assert rig.session.pending_permissions() == []
    assert rig.agent.ctx.policy.grants == ()


async def test_deny_gives_an_error_result_and_nothing_runs(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(tool_calls=[write("new.txt", "hi")]), Reply(text="ok, not then")])
    rig = await make_rig(lk, project, model)
    await rig.send("write it")
    prompt = await asked(rig)
    await rig.session.answer_permission(prompt.request_id, "deny")
    await lk.wait_idle()
    assert not (project / "new.txt").exists()
    (result,) = await rig.agent_events("tool_call_completed")
    assert isinstance(result, ToolCallCompleted)
    assert result.is_error
    assert result.outcome == "denied"
    assert "permission denied for file_write" in result.result
    assert not await rig.agent_events("tool_call_started")
    assert model.requests[-1].messages[-1] == model.requests[-1].messages[-1]
    assert getattr(model.requests[-1].messages[-1], "content", "") == result.result


async def test_allow_always_creates_a_grant_so_the_same_call_does_not_ask_again(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[write("same.txt", "one\n")]),
            Reply(tool_calls=[write("same.txt", "two\n")]),
            Reply(tool_calls=[write("other.txt", "three\n")]),
            Reply(text="done"),
        ]
    )
    rig = await make_rig(lk, project, model)
    await rig.send("write twice")
    first = await asked(rig)
    await rig.session.answer_permission(first.request_id, "allow_always")
    second = await asked(rig, nth=2)
    # The identical call (same tool, same target) ran without asking; a new target asks.
    assert second.target.endswith("other.txt")
    assert (project / "same.txt").read_text() == "two\n"
    grants = rig.agent.ctx.policy.grants
    assert [(g.tool, g.target) for g in grants] == [("file_write", first.target)]
    await rig.session.answer_permission(second.request_id, "allow_once")
    await lk.wait_idle()
    started = await rig.agent_events("tool_call_started")
    assert len(started) == 3
    assert len(await rig.agent_events("permission_requested")) == 2


async def test_a_permission_responder_answers_for_the_user(lk: Loomkin, project: Path) -> None:
    model = ScriptedModel([Reply(tool_calls=[Call("shell", {"command": "echo hi"})]), Reply()])
    rig = await make_rig(lk, project, model)

    seen: list[PendingPermission] = []

    async def responder(prompt: PendingPermission) -> PermissionDecision:
        seen.append(prompt)
        return "allow_once"

    rig.session.set_permission_responder(responder)
    await rig.send("run it")
    await lk.wait_idle()
    (prompt,) = seen  # a record of the prompt, never the live agent
    assert (prompt.agent, prompt.tool) == ("worker", "shell")
    assert prompt.arguments["command"] == "echo hi"
    (resolved,) = await rig.agent_events("permission_resolved")
    assert isinstance(resolved, PermissionResolved)
    assert (resolved.decision, resolved.decided_by) == ("allow_once", "auto")
    (result,) = await rig.agent_events("tool_call_completed")
    assert isinstance(result, ToolCallCompleted)
    assert result.result == "hi\n[exit code 0]"
