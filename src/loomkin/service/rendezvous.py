"""Rendezvous points and readiness signals as frozen records; the user's commands on them.

The user may open a rendezvous (``loomkin rendezvous create``, ``POST .../rendezvous``) and
add participants to one at runtime, as a lead does with the tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import ToolError, UserError
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.agents.session import SessionRuntime
    from loomkin.coordination import Member
    from loomkin.coordination.rendezvous import Barrier

__all__ = ["RendezvousInfo", "create_rendezvous", "join_rendezvous", "list_rendezvous"]

_ACTIONS = ("message", "create_task", "unblock_task")


@dataclass(frozen=True, slots=True, kw_only=True)
class RendezvousInfo:
    """One rendezvous point, as the CLI and the web app show it."""

    rendezvous_id: str
    name: str
    status: str
    """``open``, ``completed`` or ``timed_out``."""
    created_by: str
    participants: tuple[str, ...]
    arrived: tuple[str, ...]
    missing: tuple[str, ...]
    timeout_s: float
    deadline: float
    action: str


def _info(barrier: Barrier) -> RendezvousInfo:
    c = barrier.created
    return RendezvousInfo(
        rendezvous_id=c.rendezvous_id,
        name=c.name,
        status=barrier.outcome or "open",
        created_by=c.creator_name,
        participants=tuple(barrier.participants.values()),
        arrived=tuple(n for a, n in barrier.participants.items() if a in barrier.arrived),
        missing=tuple(barrier.missing()),
        timeout_s=c.timeout_s,
        deadline=c.deadline,
        action=c.action,
    )


def list_rendezvous(runtime: SessionRuntime) -> list[RendezvousInfo]:
    """Every rendezvous of the session, oldest first."""
    return [_info(b) for b in runtime.coordination.rendezvous.barriers.values()]


def _members(runtime: SessionRuntime, names: Sequence[str]) -> list[Member]:
    found = []
    for name in names:
        agent = runtime.agent(name)  # NotFound lists the agents
        member = runtime.directory.member(agent.agent_id)
        assert member is not None, "an agent of the session is a member"
        found.append(member)
    return found


async def create_rendezvous(
    runtime: SessionRuntime,
    name: str,
    participants: Sequence[str],
    *,
    timeout_s: float = 300.0,
    action: str = "message",
    message: str = "",
    notify: Sequence[str] = (),
    task_title: str = "",
    task_team: str | None = None,
    task_id: str | None = None,
) -> RendezvousInfo:
    """Open a rendezvous as the user (participants by name, ``team/name`` or id).

    Raises:
        UserError: a bad name, action, timeout or missing task detail.
        NotFound: an unknown agent, team or task.
    """
    if action not in _ACTIONS:
        raise UserError(f"action must be one of {', '.join(_ACTIONS)}, not {action!r}")
    book = runtime.coordination.rendezvous
    try:
        created = await book.create(
            None,
            name,
            _members(runtime, participants),
            team_id=runtime.root_team_id,
            timeout_s=timeout_s,
            action=action,  # type: ignore[arg-type]
            message=message,
            notify=_members(runtime, notify),
            task_title=task_title,
            task_team=runtime.resolve_team(task_team) if task_team else None,
            task_id=TaskId(task_id) if task_id else None,
        )
    except ToolError as exc:
        raise UserError(str(exc)) from None
    return _info(book.barriers[created.rendezvous_id])


async def join_rendezvous(runtime: SessionRuntime, name: str, agents: Sequence[str]) -> list[str]:
    """Add participants to an open rendezvous; returns the names added."""
    if not agents:
        raise UserError("name at least one agent to add")
    try:
        return await runtime.coordination.rendezvous.join("user", name, _members(runtime, agents))
    except ToolError as exc:
        raise UserError(str(exc)) from None
