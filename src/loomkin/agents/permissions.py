"""The permission gate: may this tool call run? Ask the policy, then (if it says so) the user.

The session's one :class:`~loomkin.tools.permissions.PermissionPolicy` answers allow, deny or
ask. To ask, the gate opens a prompt on the session's desk, journals the request, sets the
agent ``waiting_permission`` and waits for the answer (the user's, the automatic responder's,
or a forced pause's). A prompt asked before a restart is asked again under the same request
id, so an answer given to the old one still fits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.desk import PermissionPrompt
from loomkin.core.events import PermissionRequested, PermissionResolved
from loomkin.ids import CallId, RequestId, new_id

if TYPE_CHECKING:
    from pydantic import BaseModel

    from loomkin.agents.agent import Agent
    from loomkin.agents.context import AgentContext
    from loomkin.agents.desk import PermissionAnswer
    from loomkin.core.chat import ToolCall
    from loomkin.core.events import RecordedEvent
    from loomkin.core.records import PermissionDecision
    from loomkin.tools.base import Tool
    from loomkin.tools.permissions import PermissionPolicy

__all__ = ["PolicyGrants", "ask", "authorise"]


async def authorise(
    agent: Agent, call: ToolCall, tool: Tool[AgentContext], args: BaseModel, target: str
) -> bool:
    """Whether the call may run; when it may not, its result is already recorded."""
    decision = agent.ctx.policy.decide(tool.name, tool.category, target)
    if decision == "allow":
        return True
    what = target or "this call"
    if decision == "deny":
        text = f"Error: {tool.name} is denied by the permission policy for {what}."
        await agent.record_tool_result(call, text, outcome="denied", is_error=True)
        return False
    answer = await ask(agent, call, tool, args, target)
    if answer == "force_pause":
        await agent.record_tool_result(
            call,
            "skipped: paused by user (the permission prompt was cancelled)",
            outcome="skipped",
            is_error=True,
        )
        return False
    if answer == "deny":
        text = f"Error: permission denied for {tool.name} on {what}."
        await agent.record_tool_result(call, text, outcome="denied", is_error=True)
        return False
    return True


async def ask(
    agent: Agent, call: ToolCall, tool: Tool[AgentContext], args: BaseModel, target: str
) -> PermissionAnswer:
    """Ask the user (or the session's responder) whether this call may run."""
    pending = agent.memory.pending_permission
    asked_before = pending is not None and pending.call_id == call.call_id
    request_id = pending.request_id if pending is not None and asked_before else new_id("perm_")
    arguments = args.model_dump(mode="json")
    desk = agent.ctx.permissions
    future = desk.open(
        PermissionPrompt(
            request_id=request_id,
            agent_id=agent.agent_id,
            agent=agent.name,
            tool=tool.name,
            category=tool.category,
            arguments=arguments,
            target=target,
        )
    )
    try:
        waiting = agent.status_change("waiting_permission", f"{tool.name} {target}".strip())
        if asked_before:
            await agent.emit(*waiting)
        else:  # the prompt and the status it puts the agent in: one batch
            await agent.emit(
                PermissionRequested(
                    session_id=agent.session_id,
                    agent_id=agent.agent_id,
                    request_id=RequestId(request_id),
                    call_id=CallId(call.call_id),
                    tool=tool.name,
                    category=tool.category,
                    arguments=arguments,
                    target=target,
                ),
                *waiting,
            )
        desk.asked(request_id)
        answer, decided_by = await future
    finally:
        desk.close(request_id)
    decision: PermissionDecision = "deny" if answer == "force_pause" else answer
    await agent.emit(
        PermissionResolved(
            session_id=agent.session_id,
            agent_id=agent.agent_id,
            request_id=RequestId(request_id),
            decision=decision,
            tool=tool.name,
            target=target,
            decided_by=decided_by,
        )
    )
    return answer


class PolicyGrants:
    """Folds "allow always" answers into the session's policy (replayed after a restart)."""

    def __init__(self, policy: PermissionPolicy) -> None:
        self._policy = policy

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        match recorded.event:
            case PermissionResolved(decision="allow_always", tool=tool, target=target):
                self._policy.grant_always(tool, target or "*")
            case _:
                pass

    def caught_up(self) -> None:
        """Nothing to act on."""
