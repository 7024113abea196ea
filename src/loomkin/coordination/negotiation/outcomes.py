"""Carrying out a negotiation's outcome: the task moves or stays, in the resolution's batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.coordination.negotiation.texts import outcome_text
from loomkin.core.events import NegotiationResolved
from loomkin.core.taskstates import allowed_targets
from loomkin.tasks.service import WorkerRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.coordination.base import Context, Member
    from loomkin.coordination.negotiation.records import Negotiation
    from loomkin.core.events import Event
    from loomkin.core.events.negotiation import NegotiationOutcome
    from loomkin.core.taskview import TaskView
    from loomkin.ids import AgentId

__all__ = ["apply_outcome", "keep", "resolution_event"]


async def apply_outcome(
    ctx: Context,
    neg: Negotiation,
    prefix: Sequence[Event],
    target: Member | None,
    decided_by: str,
    reason: str,
    *,
    declined: bool,
    tell: AgentId | None,
) -> NegotiationOutcome:
    """Move the task to ``target`` or keep it, with ``prefix`` and the resolution, in one batch.

    ``tell``: the assignee to send the outcome to (``None`` when it reads it as a tool result).
    """
    view = ctx.tasks.task(neg.opened.task_id)
    if target is not None and "pending" in allowed_targets(view.status):
        resolved = resolution_event(ctx, neg, "reassigned", decided_by, target, reason, declined)
        notes = _tell(ctx, tell, view, "reassigned", target.name, reason)
        worker = WorkerRef(agent_id=target.agent_id, name=target.name, team_id=target.team_id)
        by = "negotiation" if decided_by in ("policy", "window") else decided_by
        await ctx.tasks.reassign(
            view.task_id, worker, by=by, reason=reason, also=[*prefix, resolved, *notes]
        )
        return "reassigned"
    if target is not None:
        reason = f"{reason}; but the task can no longer move (it is {view.status})"
    resolved = resolution_event(ctx, neg, "kept", decided_by, None, reason, declined)
    await keep(ctx, neg, [*prefix, resolved, *_tell(ctx, tell, view, "kept", "", reason)])
    return "kept"


async def keep(ctx: Context, neg: Negotiation, events: list[Event]) -> None:
    """Append ``events``; a task blocked on the negotiation goes back in progress with them."""
    view = ctx.tasks.task(neg.opened.task_id)
    if view.status == "blocked" and neg.countered is not None:
        await ctx.tasks.set_status(
            view.task_id,
            "in_progress",
            by=neg.opened.agent_id,
            note="the negotiation is over; the assignment stands",
            also=events,
        )
    else:
        await ctx.log.append(*events)


def _tell(
    ctx: Context, to: AgentId | None, view: TaskView, outcome: str, owner: str, reason: str
) -> list[Event]:
    if to is None:
        return []
    return [
        ctx.messages.message(
            "negotiation_result",
            outcome_text(view, outcome, owner, reason),
            to_agent=to,
            from_name="negotiation",
            data={"task_id": view.task_id},
        )
    ]


def resolution_event(
    ctx: Context,
    neg: Negotiation,
    outcome: NegotiationOutcome,
    decided_by: str,
    target: Member | None,
    reason: str,
    declined: bool = False,
) -> NegotiationResolved:
    """The ``NegotiationResolved`` event of ``neg``."""
    return NegotiationResolved(
        session_id=ctx.session_id,
        negotiation_id=neg.opened.negotiation_id,
        task_id=neg.opened.task_id,
        agent_id=neg.opened.agent_id,
        outcome=outcome,
        decided_by=decided_by,
        new_owner=None if target is None else target.agent_id,
        new_owner_name="" if target is None else target.name,
        declined=declined,
        reason=reason,
    )
