"""The Concierge plans once it is briefed: it waits for the Orienter's ``briefed`` signal.

Before the Concierge's model call, while the session's Orienter is still working and has not
signalled ``briefed``, the call waits (at most ``SessionSettings.briefed_timeout_s``, once per
session run) for the brief, so that the Concierge's first plan reads it. The wait ends early
on a control command (a pause or a cancel lands at once), when the Orienter's loop ends or
it crashes without a brief (no brief is coming then), and when it waits for a permission.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent

__all__ = ["wait_for_brief"]


async def wait_for_brief(agent: Agent) -> bool:
    """Wait for the Orienter's brief if the agent is the Concierge; True if it waited."""
    ctx = agent.ctx
    readiness = ctx.readiness
    if agent.role.name != "concierge" or readiness.briefing_over():
        return False
    if agent.agent_id in readiness.brief_waited:
        return False
    orienters = [
        m
        for m in ctx.directory.members()
        if m.role == "orienter" and m.status not in ("done", "crashed")
    ]
    if not orienters:
        return False
    readiness.brief_waited.add(agent.agent_id)
    brief = asyncio.ensure_future(readiness.wait_briefed(ctx.settings.briefed_timeout_s))
    control = asyncio.ensure_future(agent.mailbox.wait_control())
    try:
        await asyncio.wait({brief, control}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (brief, control):
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
    return True
