"""Deferred bootstrap: the Concierge and the Orienter arrive with the user's first message.

A session starts with an empty root team. On the first user message the Concierge and the
Orienter are spawned (unless already there: a crash between spawning and bootstrapping is
repaired, never doubled), ``SessionBootstrapped`` is recorded, and the Orienter is told to
scan the project and brief the Concierge: its own, auto-initiated loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import SessionBootstrapped, UserMessagePosted
from loomkin.errors import UserError
from loomkin.ids import MessageId, new_id

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext
    from loomkin.agents.directory import AgentDirectory
    from loomkin.agents.teams import TeamOps

__all__ = ["bootstrap", "post_user_message"]

_ORIENT = "The session has started. Scan the project and send your brief to the concierge."


async def post_user_message(
    ctx: AgentContext,
    directory: AgentDirectory,
    teams: TeamOps,
    text: str,
    *,
    to: str | None = None,
) -> MessageId:
    """Send the user's words to the Concierge (or to the agent named ``to``)."""
    if not text.strip():
        raise UserError("the message is empty")
    if not ctx.state.session(ctx.session_id).bootstrapped:
        await bootstrap(ctx, directory, teams)
    target = directory.agent(to) if to else directory.agent("concierge", ctx.root_team_id)
    message_id = MessageId(new_id("msg_"))
    await ctx.log.append(
        UserMessagePosted(
            session_id=ctx.session_id,
            message_id=message_id,
            text=text,
            to_agent=target.agent_id,
        ),
        ctx.messages.message("user_message", text, to_agent=target.agent_id, from_name="user"),
    )
    return message_id


async def bootstrap(ctx: AgentContext, directory: AgentDirectory, teams: TeamOps) -> None:
    """Spawn the Concierge and the Orienter (unless present); start the Orienter's scan.

    One batch: the missing agents, ``SessionBootstrapped`` and the Orienter's first message,
    so a crash never leaves a session bootstrapped with an Orienter that was never told to
    start (an older log's half-done bootstrap is completed, never doubled).
    """
    wanted = ["concierge", "orienter"] if ctx.settings.bootstrap_orienter else ["concierge"]
    present = {name: directory.find(ctx.root_team_id, name) for name in wanted}
    spawned = teams.spawn_events(
        ctx.root_team_id, [(name, name) for name, agent in present.items() if agent is None]
    )
    ids = {name: agent.agent_id for name, agent in present.items() if agent is not None}
    ids.update({event.name: event.agent_id for event in spawned})
    orienter = ids.get("orienter")
    await ctx.log.append(
        *spawned,
        SessionBootstrapped(
            session_id=ctx.session_id, concierge_id=ids["concierge"], orienter_id=orienter
        ),
        *([] if orienter is None else [ctx.messages.message("orient", _ORIENT, to_agent=orienter)]),
    )
