"""The session handle's coordination commands: negotiations, rendezvous, budgets.

A mixin of :class:`~loomkin.service.Session` (kept apart so the handle's module stays small):
each method reads a projection into frozen records or journals one command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loomkin.service.budgets import BudgetUpdate, update_budgets
from loomkin.service.negotiations import (
    NegotiationInfo,
    list_negotiations,
    resolve_negotiation,
)
from loomkin.service.rendezvous import (
    RendezvousInfo,
    create_rendezvous,
    join_rendezvous,
    list_rendezvous,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.agents.session import SessionRuntime
    from loomkin.runtime.eventlog import EventLog

__all__ = ["CoordinationCommands"]


class CoordinationCommands:
    """Negotiations, rendezvous and budget changes of a session (mixed into ``Session``)."""

    _runtime: SessionRuntime
    _log: EventLog

    async def raise_budgets(
        self, changes: Mapping[str, object], *, by: str = "user", resume: bool = True
    ) -> BudgetUpdate:
        """Change the named limits (``None`` removes one) and resume the agents they free.

        Raises:
            UserError: an unknown limit or a value that is not a non-negative number.
        """
        return await update_budgets(self._runtime, self._log, changes, by=by, resume=resume)

    # -- negotiations --------------------------------------------------------------------------

    def negotiations(self, *, open_only: bool = False) -> list[NegotiationInfo]:
        """Negotiations of assignments, oldest first (only open ones with ``open_only``)."""
        return list_negotiations(self._runtime, open_only=open_only)

    async def resolve_negotiation(
        self, task_id: str, resolution: str, *, agent: str | None = None, reason: str = ""
    ) -> str:
        """Answer an assignee's objection as the user: ``accept``, ``override``, ``reassign``."""
        return await resolve_negotiation(
            self._runtime, task_id, resolution, agent=agent, reason=reason
        )

    # -- rendezvous -----------------------------------------------------------------------------

    def rendezvous(self) -> list[RendezvousInfo]:
        """Rendezvous points of the session: participants, who arrived, who is missing."""
        return list_rendezvous(self._runtime)

    async def create_rendezvous(
        self, name: str, participants: Sequence[str], **options: Any
    ) -> RendezvousInfo:
        """Open a rendezvous (see :func:`loomkin.service.rendezvous.create_rendezvous`)."""
        return await create_rendezvous(self._runtime, name, participants, **options)

    async def join_rendezvous(self, name: str, agents: Sequence[str]) -> list[str]:
        """Add participants (from any team) to an open rendezvous."""
        return await join_rendezvous(self._runtime, name, agents)
