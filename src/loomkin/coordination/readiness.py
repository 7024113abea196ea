"""Readiness signals (SPEC §3.8): who is ready, for what, and who wants to know.

* An agent signals readiness for something named (``signal_ready("briefed", ...)``): one
  ``AgentReady`` event, committed with a ``ready_notice`` message to every subscriber it
  matches (readable text naming the agent, its team and what it is ready for).
* An agent that becomes idle is ready too: when someone subscribed to it (or to its team),
  the book appends an ``AgentReady`` for it with the notices (nobody subscribed: nothing is
  appended, the status change says it already).
* ``subscribe_ready`` targets an agent, a team or a name; a subscription is consumed by the
  first signal it matches (subscribe again to hear of the next). Subscriptions are a
  projection of the log: they survive a restart.
* The Orienter's brief is the named signal ``briefed``: the Concierge waits for it (with a
  timeout) before it plans (:meth:`ReadinessBook.wait_briefed`). The wait also ends when the
  Orienter's loop ends without it, when it crashes (no brief is coming then), and when it
  waits for the user's permission (the user's own request must not wait on a prompt).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loomkin.core.events import AgentReady, AgentStatusChanged, LoopFinished, ReadySubscribed
from loomkin.errors import ToolError
from loomkin.ids import AgentId, TeamId, new_id

if TYPE_CHECKING:
    from loomkin.coordination.base import Context, Member
    from loomkin.core.events import Event, MessageSent
    from loomkin.core.events.readiness import ReadyTarget

__all__ = ["BRIEFED", "ReadinessBook"]

BRIEFED = "briefed"
"""The readiness name of the Orienter's brief."""


class ReadinessBook:
    """Readiness subscriptions of one session (a projection) and the signal command."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.subscriptions: dict[str, ReadySubscribed] = {}
        self.signals: list[AgentReady] = []
        self._briefing_over = asyncio.Event()
        self.brief_waited: set[str] = set()
        """Agents that waited for the brief already in this run (they wait once)."""

    def on_event(self, event: Event, *, live: bool) -> None:
        """Fold one event in; when live, an agent turning idle may owe subscribers a notice."""
        match event:
            case ReadySubscribed():
                self.subscriptions[event.subscription_id] = event
            case AgentReady():
                self.signals.append(event)
                if event.ready_for == BRIEFED:
                    self._briefing_over.set()
                for sub_id in [s.subscription_id for s in self._matching(event)]:
                    del self.subscriptions[sub_id]  # consumed by the first signal it matched
            case LoopFinished(agent_id=agent_id) if self._is_orienter(agent_id):
                self._briefing_over.set()  # its loop ended: no brief is coming any more
            case AgentStatusChanged(
                status="crashed" | "done" | "waiting_permission", agent_id=agent_id
            ) if self._is_orienter(agent_id):
                # Gone, or waiting on the user: the user's request must not wait on that.
                self._briefing_over.set()
            case AgentStatusChanged(status="idle", agent_id=agent_id) if live:
                member = self.ctx.member(agent_id)
                if member is not None and self._matching(self._ready(member, "", "")):
                    self.ctx.timers.run(
                        f"ready:{agent_id}:{new_id('r_')}", lambda: self._idle(agent_id)
                    )
            case _:
                pass

    def _is_orienter(self, agent_id: str) -> bool:
        member = self.ctx.member(agent_id)
        return member is not None and member.role == "orienter"

    def briefing_over(self) -> bool:
        """True once the Orienter signalled ``briefed`` (or ended or crashed without it)."""
        return self._briefing_over.is_set()

    async def wait_briefed(self, timeout_s: float) -> bool:
        """Wait until :meth:`briefing_over` (at most ``timeout_s``); True if it is over."""
        try:
            async with asyncio.timeout(timeout_s):  # wait_for can swallow a cancel on 3.11
                await self._briefing_over.wait()
        except TimeoutError:
            return False
        return True

    def _ready(self, member: Member, name: str, detail: str) -> AgentReady:
        return AgentReady(
            session_id=self.ctx.session_id,
            agent_id=member.agent_id,
            agent_name=member.name,
            team_id=member.team_id,
            ready_for=name,
            detail=detail,
        )

    def _matching(self, ready: AgentReady) -> list[ReadySubscribed]:
        found = []
        for sub in self.subscriptions.values():
            if sub.subscriber == ready.agent_id:
                continue
            if (
                (sub.target_kind == "agent" and sub.target == ready.agent_id)
                or (sub.target_kind == "team" and sub.target == ready.team_id)
                or (sub.target_kind == "name" and ready.ready_for and sub.target == ready.ready_for)
            ):
                found.append(sub)
        return found

    def _notices(self, ready: AgentReady) -> list[MessageSent]:
        team = self.ctx.state.team(ready.team_id).name
        what = f"ready for {ready.ready_for!r}" if ready.ready_for else "idle and ready for work"
        detail = f": {ready.detail}" if ready.detail else ""
        text = f"{ready.agent_name} (team {team}) is {what}{detail}."
        data: dict[str, str | int | float | bool | None] = {
            "agent": ready.agent_name,
            "ready_for": ready.ready_for,
        }
        return [
            self.ctx.messages.message(
                "ready_notice",
                text,
                to_agent=sub.subscriber,
                from_name=ready.agent_name,
                data=dict(data),
            )
            for sub in self._matching(ready)
        ]

    async def _idle(self, agent_id: AgentId) -> None:
        member = self.ctx.member(agent_id)
        if member is None or member.status != "idle":
            return
        ready = self._ready(member, "", "")
        notices = self._notices(ready)
        if notices:
            await self.ctx.log.append(ready, *notices)

    async def signal(self, member: Member, name: str, detail: str = "") -> int:
        """Announce that ``member`` is ready for ``name``; returns how many were notified."""
        name = name.strip()
        if not name:
            raise ToolError("Name what you are ready for (for example 'schema_ready').")
        ready = self._ready(member, name, detail.strip())
        notices = self._notices(ready)
        await self.ctx.log.append(ready, *notices)
        return len(notices)

    async def subscribe(
        self, subscriber: Member, target_kind: ReadyTarget, target: str, target_name: str
    ) -> ReadySubscribed:
        """Ask for a notice the next time the target is ready."""
        sub = ReadySubscribed(
            session_id=self.ctx.session_id,
            subscription_id=new_id("rsub_"),
            subscriber=subscriber.agent_id,
            target_kind=target_kind,
            target=target,
            target_name=target_name,
        )
        await self.ctx.log.append(sub)
        return sub

    def ready_for(self, name: str, team_id: TeamId | None = None) -> list[AgentReady]:
        """Signals so far for ``name`` (of one team's agents when ``team_id`` is given)."""
        return [
            s
            for s in self.signals
            if s.ready_for == name and (team_id is None or s.team_id == team_id)
        ]
