"""Running a tool call again after a crash cut it off, when that is safe.

How this works and why:

A tool call journaled as started but never completed was running when the process died: it
may or may not have taken effect. Running it blindly again could do its effect twice (append
a line twice, commit twice), so by default the model is told it was interrupted and decides
(:func:`~loomkin.agents.loop.run_tools`). But a call whose tool declares it idempotent for
these arguments (``Tool.idempotent``: reads, searches, listings, a ``file_write`` of whole
content, read-only git) leaves the same state however often it runs, so the runtime runs it
again itself, as a new *attempt* of the same call id (``ToolCallStarted.attempt``), through
the same validation, permission and conflict checks as the first. A call that keeps killing
the process is not retried forever: after :data:`MAX_ATTEMPTS` it is reported as
interrupted like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.errors import ToolError, UserError

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.core.chat import ToolCall

__all__ = ["MAX_ATTEMPTS", "next_attempt"]

MAX_ATTEMPTS = 3
"""Attempts of one idempotent call (the first included) before it counts as interrupted."""


def next_attempt(agent: Agent, call: ToolCall) -> int | None:
    """The attempt number to run the interrupted ``call`` again as, or ``None`` if unsafe."""
    attempt = agent.memory.call_attempts.get(call.call_id, 1)
    if attempt >= MAX_ATTEMPTS:
        return None
    try:
        tool = agent.tools.get(call.name)
        args = tool.parse_args(call.arguments)
    except (ToolError, UserError):
        return None  # it could not have started; the model reads why when told it stopped
    return attempt + 1 if tool.idempotent(args) else None
