"""Wires the coordination services into a session: one projection, the pre-write hook, timers.

The services in :mod:`loomkin.coordination` sit below the agent layer and never see an
``Agent``: they get the directory as their :class:`~loomkin.coordination.Roster` of plain
records, and reach agents only by appending events. :class:`SessionCoordination` feeds them
the session's events (replay and live alike), runs the conflict detector's check right before
a file write, and, once the replay is over, starts the rebalancer's periodic check and
re-arms the deadlines of open votes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.coordination import ConflictDetector, Context, Knowledge, Rebalancer, VoteBook
from loomkin.coordination.conflicts import WRITE_TOOLS
from loomkin.coordination.negotiation import NegotiationBook
from loomkin.coordination.readiness import ReadinessBook
from loomkin.coordination.rendezvous import RendezvousBook
from loomkin.coordination.speculation import Judge, Speculation

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.agents.settings import SessionSettings
    from loomkin.coordination import Member
    from loomkin.core.events import RecordedEvent
    from loomkin.core.events.base import JSON
    from loomkin.core.scheduling import CapabilityStats
    from loomkin.tools.base import FileAccessLog

__all__ = ["SessionCoordination"]


class SessionCoordination:
    """The coordination services of one session (a projection of its log)."""

    def __init__(
        self,
        ctx: Context,
        *,
        project_root: Path,
        settings: SessionSettings,
        files: FileAccessLog,
        judge: Judge | None = None,
        stats: CapabilityStats,
    ) -> None:
        self.ctx = ctx
        """What the services share (the log, the clock, the roster of the session's agents)."""
        self._files = files
        self.conflicts = ConflictDetector(ctx, Path(project_root))
        self.rebalancer = Rebalancer(ctx, settings.rebalancer)
        self.votes = VoteBook(ctx)
        self.speculation = Speculation(ctx, Path(project_root), settings.speculation, judge=judge)
        self.speculation.budget_usd = settings.budgets.session_usd
        self.negotiations = NegotiationBook(ctx, stats, settings.negotiation)
        self.readiness = ReadinessBook(ctx)
        self.rendezvous = RendezvousBook(ctx)
        # Assignments in this session open a negotiation in their own batch.
        ctx.tasks.set_negotiation_gate(ctx.session_id, self.negotiations)
        self.knowledge = Knowledge(
            ctx,
            lambda agent_id: frozenset(self.conflicts.touched.get(agent_id, ())),
            propagate_depth=settings.propagation_depth,
        )

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        event = recorded.event
        self.conflicts.on_event(event, live=live)
        self.rebalancer.on_event(event)
        self.votes.on_event(event)
        self.negotiations.on_event(event, live=live)
        self.readiness.on_event(event, live=live)
        self.rendezvous.on_event(event, live=live)
        self.knowledge.on_event(event)
        self.speculation.on_event(recorded, live=live)

    def caught_up(self) -> None:
        """Start the rebalancer's periodic check; re-arm open votes' and negotiations' windows."""
        self.votes.rearm_open()
        self.negotiations.rearm_open()
        self.rendezvous.rearm_open()
        self.ctx.timers.run(f"rebalancer:{self.ctx.session_id}", self.rebalancer.run_forever)
        # Re-attach or discard the workspaces of speculations a crash interrupted.
        self.ctx.timers.run(f"speculation:{self.ctx.session_id}", self.speculation.caught_up)

    async def before_write(
        self, member: Member, tool: str, arguments: Mapping[str, JSON], target: str
    ) -> str | None:
        """Run the conflict detector's check before a write lands; the refusal text, if any."""
        if tool not in WRITE_TOOLS:
            return None
        return await self.conflicts.before_write(member, tool, arguments, target, self._files)
