"""Negotiations of a session as frozen records, and the user's resolution of one.

The facade's view of :class:`~loomkin.coordination.negotiation.NegotiationBook`: the CLI and
the web app list negotiations and answer an objection as the user (who may resolve any
negotiation of the session, as a lead may in its team).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loomkin.errors import ToolError, UserError

if TYPE_CHECKING:
    from loomkin.agents.session import SessionRuntime
    from loomkin.coordination.negotiation import Negotiation

__all__ = ["NegotiationInfo", "list_negotiations", "resolve_negotiation"]

Resolution = Literal["accept", "override", "reassign"]
_RESOLUTIONS: tuple[str, ...] = ("accept", "override", "reassign")


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationInfo:
    """One negotiation of an assignment, as the CLI and the web app show it."""

    negotiation_id: str
    task_id: str
    task_title: str
    agent_id: str
    agent_name: str
    """The assignee."""
    assigner: str
    """``scheduler`` (its policy resolves) or the assigning agent's name."""
    status: str
    """``open``, ``countered``, ``accepted``, ``kept``, ``reassigned`` or ``moot``."""
    deadline: float
    """When the window closes (unix seconds, the runtime's clock)."""
    response: str = ""
    """``decline`` or ``counter`` when the assignee objected."""
    counter_kind: str = ""
    suggested_name: str = ""
    reason: str = ""
    decided_by: str = ""
    new_owner_name: str = ""
    outcome_reason: str = ""


def _info(runtime: SessionRuntime, neg: Negotiation) -> NegotiationInfo:
    opened, countered, resolved = neg.opened, neg.countered, neg.resolved
    view = runtime.ctx.tasks.board.get(opened.task_id)
    return NegotiationInfo(
        negotiation_id=opened.negotiation_id,
        task_id=opened.task_id,
        task_title=opened.task_id if view is None else view.title,
        agent_id=opened.agent_id,
        agent_name=opened.agent_name,
        assigner=opened.assigner,
        status=neg.status,
        deadline=neg.deadline,
        response="" if countered is None else countered.response,
        counter_kind="" if countered is None else (countered.counter_kind or ""),
        suggested_name="" if countered is None else countered.suggested_name,
        reason="" if countered is None else countered.reason,
        decided_by="" if resolved is None else resolved.decided_by,
        new_owner_name="" if resolved is None else resolved.new_owner_name,
        outcome_reason=neg.moot if resolved is None else resolved.reason,
    )


def list_negotiations(runtime: SessionRuntime, *, open_only: bool = False) -> list[NegotiationInfo]:
    """The session's negotiations, oldest first (only open ones with ``open_only``)."""
    book = runtime.coordination.negotiations
    return [_info(runtime, n) for n in book.negotiations() if n.open or not open_only]


async def resolve_negotiation(
    runtime: SessionRuntime,
    task_id: str,
    resolution: str,
    *,
    agent: str | None = None,
    reason: str = "",
) -> str:
    """Answer the objection on ``task_id`` as the user; returns what happened.

    Raises:
        UserError: an unknown resolution, no objection waiting on the task, or an agent that
            cannot take the task.
        NotFound: no such task or agent.
    """
    if resolution not in _RESOLUTIONS:
        raise UserError(f"resolution must be one of {', '.join(_RESOLUTIONS)}, not {resolution!r}")
    runtime.ctx.tasks.task(task_id)  # NotFound names the task
    target = None
    if agent:
        found = runtime.agent(agent)
        target = runtime.directory.member(found.agent_id)
    book = runtime.coordination.negotiations
    chosen: Resolution = (
        "accept"
        if resolution == "accept"
        else ("override" if resolution == "override" else "reassign")
    )
    try:
        return await book.resolve(None, task_id, chosen, target=target, reason=reason)
    except ToolError as exc:
        raise UserError(str(exc)) from None
