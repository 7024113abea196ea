"""Running one tool call: validate, authorise, check for conflicts, run, journal.

Every way a call can go wrong ends as a result the model reads, never as a crash: an unknown
tool, arguments that are not JSON, nested too deeply, hold a number Python will not convert
or break the schema (:mod:`loomkin.core.arguments`), a refusal by the permission policy or
the user, a write the conflict detector stops, and an exception inside the tool itself. The
call is journaled as started before it runs and as completed (with its result) after, so a
resume never runs a completed call again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from loomkin.agents.permissions import authorise
from loomkin.core.events import ToolCallStarted
from loomkin.errors import LoomkinError, ToolError, UserError
from loomkin.ids import CallId

if TYPE_CHECKING:
    from pydantic import BaseModel

    from loomkin.agents.agent import Agent
    from loomkin.agents.context import AgentContext
    from loomkin.coordination import Member
    from loomkin.core.chat import ToolCall
    from loomkin.tools.base import Tool, ToolContext

__all__ = ["execute_tool"]

logger = logging.getLogger(__name__)


async def execute_tool(agent: Agent, call: ToolCall, *, attempt: int = 1) -> None:
    """Validate, authorise, run and journal one tool call; errors become readable results.

    ``attempt`` > 1 runs an idempotent call again after a crash cut its earlier attempt off
    (:mod:`loomkin.agents.rerun`); it is journaled under the same call id.
    """
    ctx = agent.tool_context(call)
    try:
        tool = agent.tools.get(call.name)
        args = tool.parse_args(call.arguments)
        target = tool.target(args, ctx)
    except (ToolError, UserError) as exc:
        await agent.record_tool_result(call, f"Error: {exc}", outcome="error", is_error=True)
        return
    except Exception as exc:
        # Validating and resolving arguments is pure, so whatever a model's text makes them
        # raise (a path with a NUL byte: ValueError) is a problem with the call, and a
        # journaled call that raised here would raise again on every restart: the model is
        # told, the agent carries on.
        detail = str(exc)[:500]
        logger.warning("arguments of %s rejected unexpectedly: %s", call.name, detail)
        text = f"Error: invalid arguments for {call.name}: {type(exc).__name__}: {detail}"
        await agent.record_tool_result(call, text, outcome="error", is_error=True)
        return
    if not await authorise(agent, call, tool, args, target):
        return
    refusal = await agent.ctx.pre_write.before_write(
        _member(agent), tool.name, args.model_dump(mode="json"), target
    )
    if refusal is not None:  # the conflict detector stopped the write before it landed
        await agent.record_tool_result(call, f"Error: {refusal}", outcome="denied", is_error=True)
        return
    await _run(agent, call, tool, args, ctx, target, attempt)


def _member(agent: Agent) -> Member:
    member = agent.ctx.directory.member(agent.agent_id)
    assert member is not None, f"agent {agent.name!r} is not in its session's directory"
    return member


async def _run(
    agent: Agent,
    call: ToolCall,
    tool: Tool[AgentContext],
    args: BaseModel,
    ctx: ToolContext,
    target: str,
    attempt: int,
) -> None:
    await agent.emit(
        ToolCallStarted(
            session_id=agent.session_id,
            agent_id=agent.agent_id,
            call_id=CallId(call.call_id),
            tool=tool.name,
            arguments=args.model_dump(mode="json"),
            target=target,
            attempt=attempt,
        ),
        *agent.status_change("executing_tool", tool.name),
    )
    started = agent.clock.monotonic()
    try:
        text, is_error = await agent.ctx.tool_runner.run(tool, args, ctx, agent.ctx), False
    except (ToolError, LoomkinError) as exc:
        text, is_error = f"Error: {exc}", True
    except Exception as exc:  # a bug in a tool must not crash the agent; the model is told
        logger.exception("tool %s failed for agent %s", tool.name, agent.name)
        text, is_error = (
            f"Error: {tool.name} failed unexpectedly: {type(exc).__name__}: {exc}",
            True,
        )
    duration_ms = (agent.clock.monotonic() - started) * 1000.0
    await agent.record_tool_result(
        call,
        text,
        outcome="error" if is_error else "ok",
        is_error=is_error,
        duration_ms=duration_ms,
        status="thinking",
    )
