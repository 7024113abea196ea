"""Rendezvous points (SPEC §3.8): named barriers whose action runs once when all arrive.

How this works and why:

* ``rendezvous_create`` names the barrier, its participants (any teams), a timeout (default
  5 minutes) and the action: a message to named agents (the participants by default), a task
  to create, or a blocked task to unblock. ``rendezvous_join`` adds participants at runtime;
  ``rendezvous_arrive`` records an arrival.
* When every participant has arrived, ``RendezvousCompleted`` is appended in one batch with
  the action's own events (the messages, the new task, the unblocked task's status), so the
  action runs exactly once, also across a crash. A participant that crashes or retires is
  removed (``RendezvousLeft``), which may complete the barrier. At the timeout,
  ``RendezvousTimedOut`` names who was missing, and the creator and participants are told.
* The book is a projection of the log: barriers survive a restart, and their timers are
  re-armed when the replay has caught up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentFailedPermanently,
    AgentStatusChanged,
    RendezvousArrived,
    RendezvousCompleted,
    RendezvousCreated,
    RendezvousJoined,
    RendezvousLeft,
    RendezvousTimedOut,
)
from loomkin.errors import ToolError
from loomkin.ids import AgentId, TaskId, TeamId, new_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from loomkin.coordination.base import Context, Member
    from loomkin.core.events import Event
    from loomkin.core.events.readiness import RendezvousAction

__all__ = ["Barrier", "RendezvousBook"]

_GONE = frozenset({"crashed", "done"})


@dataclass(slots=True)
class Barrier:
    """One rendezvous as the log describes it."""

    created: RendezvousCreated
    participants: dict[str, str]
    """Agent id → name."""
    arrived: set[str] = field(default_factory=set)
    outcome: str = ""
    """``completed`` or ``timed_out`` once over."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def open(self) -> bool:
        return not self.outcome

    def missing(self) -> list[str]:
        """Names of the participants who have not arrived."""
        return [n for a, n in self.participants.items() if a not in self.arrived]


class RendezvousBook:
    """Rendezvous points of one session (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.barriers: dict[str, Barrier] = {}

    # -- projection -------------------------------------------------------------------------------

    def on_event(self, event: Event, *, live: bool) -> None:
        """Fold one event in; arm timers and remove gone participants when live."""
        match event:
            case RendezvousCreated():
                names = {a: self._name(a) for a in event.participants}
                self.barriers[event.rendezvous_id] = Barrier(created=event, participants=names)
                if live:
                    self._arm(event.rendezvous_id)
            case RendezvousJoined() if event.rendezvous_id in self.barriers:
                self.barriers[event.rendezvous_id].participants[event.agent_id] = event.agent_name
            case RendezvousArrived() if event.rendezvous_id in self.barriers:
                self.barriers[event.rendezvous_id].arrived.add(event.agent_id)
            case RendezvousLeft() if event.rendezvous_id in self.barriers:
                barrier = self.barriers[event.rendezvous_id]
                barrier.participants.pop(event.agent_id, None)
                barrier.arrived.discard(event.agent_id)
            case RendezvousCompleted() if event.rendezvous_id in self.barriers:
                self.barriers[event.rendezvous_id].outcome = "completed"
            case RendezvousTimedOut() if event.rendezvous_id in self.barriers:
                self.barriers[event.rendezvous_id].outcome = "timed_out"
            case AgentStatusChanged(status=status, agent_id=agent_id) if live and status in _GONE:
                self._gone(agent_id, f"it is {status}")
            case AgentFailedPermanently(agent_id=agent_id) if live:
                self._gone(agent_id, "it failed for good")
            case _:
                pass

    def _gone(self, agent_id: str, reason: str) -> None:
        for rid, barrier in self.barriers.items():
            if barrier.open and agent_id in barrier.participants:
                self.ctx.timers.run(
                    f"rendezvous-left:{rid}:{agent_id}",
                    self._remover(rid, AgentId(agent_id), reason),
                )

    def _remover(self, rid: str, agent_id: AgentId, reason: str) -> Callable[[], Awaitable[None]]:
        async def remove() -> None:
            await self._remove(rid, agent_id, reason)

        return remove

    def rearm_open(self) -> None:
        """Arm the timeouts of barriers still open after a replay."""
        for rid, barrier in self.barriers.items():
            if barrier.open:
                self._arm(rid)

    def _name(self, agent_id: str) -> str:
        member = self.ctx.member(agent_id)
        return agent_id if member is None else member.name

    # -- queries ----------------------------------------------------------------------------------

    def open_named(self, name: str) -> Barrier:
        """The open barrier called ``name`` (raises a readable ``ToolError`` if none)."""
        for barrier in self.barriers.values():
            if barrier.open and barrier.created.name == name:
                return barrier
        known = sorted({b.created.name for b in self.barriers.values() if b.open})
        hint = f" Open ones: {', '.join(known)}." if known else " There is none open."
        raise ToolError(f"There is no open rendezvous called {name!r}.{hint}")

    # -- commands ---------------------------------------------------------------------------------

    async def create(
        self,
        creator: Member | None,
        name: str,
        participants: Sequence[Member],
        *,
        team_id: TeamId,
        timeout_s: float = 300.0,
        action: RendezvousAction = "message",
        message: str = "",
        notify: Sequence[Member] = (),
        task_title: str = "",
        task_team: TeamId | None = None,
        task_id: TaskId | None = None,
    ) -> RendezvousCreated:
        """Open a barrier (names are unique among the open ones)."""
        name = name.strip()
        if not name:
            raise ToolError("A rendezvous needs a name.")
        if any(b.open and b.created.name == name for b in self.barriers.values()):
            raise ToolError(f"A rendezvous called {name!r} is already open.")
        if not participants:
            raise ToolError("A rendezvous needs at least one participant.")
        if timeout_s <= 0:
            raise ToolError("The timeout must be positive (seconds).")
        if action == "create_task" and not task_title.strip():
            raise ToolError('action "create_task" needs task_title.')
        if action == "unblock_task":
            if task_id is None:
                raise ToolError('action "unblock_task" needs task_id.')
            self.ctx.tasks.task(task_id)  # NotFound names it
        created = RendezvousCreated(
            session_id=self.ctx.session_id,
            rendezvous_id=new_id("rdv_"),
            name=name,
            team_id=team_id,
            created_by=None if creator is None else creator.agent_id,
            creator_name="user" if creator is None else creator.name,
            participants=tuple(dict.fromkeys(m.agent_id for m in participants)),
            timeout_s=timeout_s,
            deadline=self.ctx.clock.now() + timeout_s,
            action=action,
            message=message,
            notify=tuple(m.agent_id for m in notify),
            task_title=task_title.strip(),
            task_team=task_team,
            task_id=task_id,
        )
        await self.ctx.log.append(created)
        return created

    async def join(self, by: str, name: str, members: Sequence[Member]) -> list[str]:
        """Add participants to the open barrier ``name``; returns the names added."""
        barrier = self.open_named(name)
        async with barrier.lock:
            fresh = [m for m in members if m.agent_id not in barrier.participants]
            events = [
                RendezvousJoined(
                    session_id=self.ctx.session_id,
                    rendezvous_id=barrier.created.rendezvous_id,
                    agent_id=m.agent_id,
                    agent_name=m.name,
                    by=by,
                )
                for m in fresh
            ]
            if events:
                await self.ctx.log.append(*events)
        return [m.name for m in fresh]

    async def arrive(self, member: Member, name: str) -> str:
        """Record ``member``'s arrival; the action runs if it was the last one awaited."""
        barrier = self.open_named(name)
        async with barrier.lock:
            if member.agent_id not in barrier.participants:
                raise ToolError(
                    f"You are not a participant of rendezvous {name!r}; rendezvous_join adds "
                    "participants."
                )
            if member.agent_id in barrier.arrived:
                return f"You had already arrived at {name!r}; waiting for: " + (
                    ", ".join(barrier.missing()) or "nobody"
                )
            arrived = RendezvousArrived(
                session_id=self.ctx.session_id,
                rendezvous_id=barrier.created.rendezvous_id,
                agent_id=member.agent_id,
                agent_name=member.name,
            )
            last = set(barrier.participants) - barrier.arrived == {member.agent_id}
            if last:
                await self._complete(barrier, [arrived])
                return f"Everyone has arrived at {name!r}: its action ran."
            await self.ctx.log.append(arrived)
            return f"Arrived at {name!r}; still waiting for: {', '.join(barrier.missing())}."

    async def _remove(self, rid: str, agent_id: AgentId, reason: str) -> None:
        barrier = self.barriers[rid]
        async with barrier.lock:
            if not barrier.open or agent_id not in barrier.participants:
                return
            left = RendezvousLeft(
                session_id=self.ctx.session_id,
                rendezvous_id=rid,
                agent_id=agent_id,
                agent_name=barrier.participants[agent_id],
                reason=reason,
            )
            rest = set(barrier.participants) - {agent_id}
            if rest and rest <= barrier.arrived:
                await self._complete(barrier, [left])
            else:
                await self.ctx.log.append(left)

    async def _complete(self, barrier: Barrier, prefix: list[Event]) -> None:
        """Append the completion with the action's events, in one batch (lock held)."""
        c = barrier.created
        names = tuple(
            n for a, n in barrier.participants.items() if a in barrier.arrived or a in _ids(prefix)
        )
        if c.action == "create_task":
            task_id = TaskId(new_id("task_"))
            done = self._completed(c, names, task_id)
            await self.ctx.tasks.create(
                session_id=self.ctx.session_id,
                team_id=c.task_team or c.team_id,
                title=c.task_title,
                description=c.message,
                created_by=c.created_by,
                task_id=task_id,
                also=[*prefix, done],
            )
            return
        if c.action == "unblock_task" and c.task_id is not None:
            done = self._completed(c, names, c.task_id)
            events = [*prefix, done, *self._messages(c, f"Rendezvous {c.name!r} is complete.")]
            await self.ctx.tasks.move_if(
                c.task_id, "blocked", "in_progress", by=None, note=f"rendezvous {c.name}",
                also=events,
            )  # fmt: skip
            return
        text = c.message or f"Everyone has arrived at rendezvous {c.name!r}."
        await self.ctx.log.append(
            *prefix, self._completed(c, names, None), *self._messages(c, text)
        )

    def _completed(
        self, c: RendezvousCreated, names: tuple[str, ...], task_id: TaskId | None
    ) -> RendezvousCompleted:
        return RendezvousCompleted(
            session_id=self.ctx.session_id,
            rendezvous_id=c.rendezvous_id,
            name=c.name,
            arrived=names,
            task_id=task_id,
        )

    def _messages(self, c: RendezvousCreated, text: str) -> list[Event]:
        barrier = self.barriers[c.rendezvous_id]
        to = list(c.notify) or list(barrier.participants)
        if c.action != "message" and c.created_by is not None and c.created_by not in to:
            to.append(c.created_by)
        return [
            self.ctx.messages.message(
                "rendezvous",
                f"[Rendezvous {c.name}] {text}",
                to_agent=AgentId(agent),
                from_name=c.creator_name,
                data={"rendezvous": c.name},
            )
            for agent in dict.fromkeys(to)
        ]

    # -- timeouts ---------------------------------------------------------------------------------

    def _arm(self, rid: str) -> None:
        async def time_out() -> None:
            barrier = self.barriers[rid]
            await asyncio.sleep(max(0.0, barrier.created.deadline - self.ctx.clock.now()))
            async with barrier.lock:
                if not barrier.open:
                    return
                missing = tuple(barrier.missing())
                c = barrier.created
                timed_out = RendezvousTimedOut(
                    session_id=self.ctx.session_id, rendezvous_id=rid, name=c.name, missing=missing
                )
                text = (
                    f"Rendezvous {c.name!r} timed out after {c.timeout_s:.0f} s; missing: "
                    f"{', '.join(missing) or 'nobody'}."
                )
                notes = self._messages(c, text)
                if c.created_by is not None and c.created_by not in (
                    getattr(n, "to_agent", None) for n in notes
                ):
                    notes += [
                        self.ctx.messages.message(
                            "rendezvous", text, to_agent=c.created_by, from_name="rendezvous"
                        )
                    ]
                await self.ctx.log.append(timed_out, *notes)

        self.ctx.timers.run(f"rendezvous:{rid}", time_out)


def _ids(events: list[Event]) -> set[str]:
    return {str(getattr(e, "agent_id", "")) for e in events if isinstance(e, RendezvousArrived)}
