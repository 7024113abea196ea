"""The negotiation book of one session: a projection of its log, its commands and timers.

How this works and why:

* **Opened with the assignment.** The task service asks the book (its
  :class:`~loomkin.tasks.NegotiationGate`) for a ``NegotiationOpened`` event on every
  assignment to an agent that takes tasks, and commits it in the assignment's batch. Who
  resolves is decided then: the lead who assigned, or (``assigner_id`` None) the policy.
* **The assignee answers** with ``task_accept`` (closes it), ``task_decline`` or
  ``task_counter`` (:meth:`NegotiationBook.object`). The policy answers at once
  (:mod:`.policy`); a lead is sent the objection and has ``counter_window_s`` to call
  ``negotiation_resolve`` while the task waits ``blocked`` (it is not the assignee's work
  until it is decided, and a blocked task is not nagged about).
* **The outcome moves the task.** A ``reassigned`` outcome is one batch with the release and
  the new ``TaskAssigned`` (:meth:`TaskService.reassign`); a ``kept`` one puts a blocked task
  back in progress and tells the assignee. A declining assignee's ``NegotiationResolved``
  carries ``declined`` and counts against its fit for the task's type
  (:class:`~loomkin.core.scheduling.CapabilityStats`); it is never offered the task again.
* **Windows fall back.** A timer per negotiation (on the session's timers, virtual time in
  tests) resolves it as ``kept`` at its deadline; a counter moves the deadline. After a
  restart the book is rebuilt from the log and :meth:`rearm_open` re-arms the open ones.
* A negotiation whose task ends or moves first (completed, cancelled, released, claimed) is
  moot: nothing is left to decide, so nothing is appended.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loomkin.coordination.base import COORDINATION_ROLES
from loomkin.coordination.negotiation.outcomes import apply_outcome, keep, resolution_event
from loomkin.coordination.negotiation.policy import can_take, policy_verdict
from loomkin.coordination.negotiation.records import Negotiation, NegotiationSettings, Objection
from loomkin.coordination.negotiation.texts import objection_line, offer_text
from loomkin.core.events import (
    NegotiationCountered,
    NegotiationOpened,
    NegotiationResolved,
    TaskAssigned,
    TaskStatusChanged,
)
from loomkin.core.events.tasks import TaskClaimed
from loomkin.core.taskstates import allowed_targets
from loomkin.errors import ToolError
from loomkin.ids import TaskId, new_id

if TYPE_CHECKING:
    from loomkin.coordination.base import Context, Member
    from loomkin.coordination.negotiation.records import Resolution
    from loomkin.core.events import Event
    from loomkin.core.scheduling import CapabilityStats
    from loomkin.core.taskview import TaskView
    from loomkin.tasks.service import Worker

__all__ = ["NegotiationBook"]

_ENDS = frozenset({"completed", "failed", "cancelled", "pending"})
_POLICY_NAMES = frozenset({"scheduler", "negotiation", "rebalancer", ""})


class NegotiationBook:
    """Negotiations of one session (see the module docstring)."""

    def __init__(
        self, ctx: Context, stats: CapabilityStats, settings: NegotiationSettings | None = None
    ) -> None:
        self.ctx = ctx
        self.stats = stats
        self.settings = settings or NegotiationSettings()
        self._by_id: dict[str, Negotiation] = {}
        self._latest: dict[TaskId, str] = {}
        self._declined: dict[TaskId, set[str]] = {}
        self._lock = asyncio.Lock()

    # -- the gate ---------------------------------------------------------------------------------

    def opened(self, view: TaskView, worker: Worker, *, by: str) -> NegotiationOpened | None:
        """The event opening a negotiation on this assignment (``None``: none is opened)."""
        if not self.settings.enabled or view.session_id != self.ctx.session_id:
            return None
        member = self.ctx.member(worker.agent_id)
        if member is None or member.role in COORDINATION_ROLES:
            return None
        assigner = self._assigner(by, view)
        window = self.settings.window_s
        return NegotiationOpened(
            session_id=self.ctx.session_id,
            negotiation_id=new_id("neg_"),
            task_id=view.task_id,
            team_id=view.team_id,
            agent_id=worker.agent_id,
            agent_name=worker.name,
            assigner=by or "scheduler",
            assigner_id=None if assigner is None else assigner.agent_id,
            window_s=window,
            deadline=self.ctx.clock.now() + window,
        )

    def _assigner(self, by: str, view: TaskView) -> Member | None:
        """The agent that assigned (by name), preferring one of the task's team."""
        if by in _POLICY_NAMES:
            return None
        named = [m for m in self.ctx.roster.members() if m.name == by]
        same_team = [m for m in named if m.team_id == view.team_id]
        found = same_team or named
        return found[0] if found else None

    # -- projection -------------------------------------------------------------------------------

    def on_event(self, event: Event, *, live: bool) -> None:
        """Fold one event in; arm the window of a negotiation opened live."""
        match event:
            case NegotiationOpened():
                self._by_id[event.negotiation_id] = Negotiation(
                    opened=event, deadline=event.deadline
                )
                self._latest[event.task_id] = event.negotiation_id
                if live:
                    self._arm(event.negotiation_id)
            case NegotiationCountered() if event.negotiation_id in self._by_id:
                neg = self._by_id[event.negotiation_id]
                neg.countered = event
                neg.deadline = event.deadline
            case NegotiationResolved() if event.negotiation_id in self._by_id:
                self._by_id[event.negotiation_id].resolved = event
                if event.declined:
                    self._declined.setdefault(event.task_id, set()).add(event.agent_id)
            case TaskAssigned() | TaskClaimed():
                moved = self.open_for(event.task_id)
                if moved is not None and moved.opened.agent_id != event.owner:
                    moved.moot = f"the task went to {event.owner_name}"
            case TaskStatusChanged(status=status) if status in _ENDS:
                ended = self.open_for(event.task_id)
                if ended is not None:
                    ended.moot = f"the task became {status}"
            case _:
                pass

    def rearm_open(self) -> None:
        """Arm the windows of negotiations still open after a replay."""
        for negotiation_id, neg in self._by_id.items():
            if neg.open:
                self._arm(negotiation_id)

    # -- queries ----------------------------------------------------------------------------------

    def negotiations(self) -> list[Negotiation]:
        """Every negotiation of the session, oldest first."""
        return list(self._by_id.values())

    def open_for(self, task_id: str) -> Negotiation | None:
        """The open negotiation on ``task_id``, if there is one."""
        negotiation_id = self._latest.get(TaskId(task_id))
        neg = None if negotiation_id is None else self._by_id.get(negotiation_id)
        return neg if neg is not None and neg.open else None

    def declined(self, task_id: str) -> frozenset[str]:
        """Ids of the agents that declined ``task_id``."""
        return frozenset(self._declined.get(TaskId(task_id), ()))

    # -- commands ---------------------------------------------------------------------------------

    def _own_open(self, member: Member, task_id: str) -> Negotiation:
        neg = self.open_for(task_id)
        if neg is None or neg.opened.agent_id != member.agent_id:
            title = self._title(task_id)
            raise ToolError(
                f"There is no open negotiation on task {title!r} (id {task_id}) for you: it is "
                "not assigned to you, or its window has closed (the assignment stands)."
            )
        return neg

    async def accept(self, member: Member, task_id: str) -> str:
        """The assignee takes the task; an objection it made is withdrawn."""
        async with self._lock:
            neg = self._own_open(member, task_id)
            resolved = resolution_event(
                self.ctx, neg, "accepted", "agent", None, "the assignee accepted"
            )
            await keep(self.ctx, neg, [resolved])
        return f"You accepted task {self._title(task_id)!r}; it is yours."

    async def object(self, member: Member, task_id: str, objection: Objection) -> str:
        """Record a decline or a counter-proposal; the policy answers now, a lead later."""
        async with self._lock:
            neg = self._own_open(member, task_id)
            if neg.countered is not None:
                raise ToolError(
                    "You already objected to this assignment; wait for the answer "
                    "(it comes as a message)."
                )
            view = self.ctx.tasks.task(task_id)
            lead = self.ctx.member(neg.opened.assigner_id)
            window = (
                self.settings.counter_window_s
                if objection.response == "counter"
                else self.settings.window_s
            )
            countered = NegotiationCountered(
                session_id=self.ctx.session_id,
                negotiation_id=neg.opened.negotiation_id,
                task_id=view.task_id,
                agent_id=member.agent_id,
                agent_name=member.name,
                response=objection.response,
                counter_kind=objection.counter_kind,
                suggested_agent_id=objection.suggested,
                suggested_name=objection.suggested_name,
                reason=objection.reason,
                deadline=self.ctx.clock.now() + window,
            )
            if lead is None:
                return await self._by_policy(neg, view, countered, objection)
            offer = self.ctx.messages.message(
                "negotiation_offer",
                offer_text(view, member.name, objection, window),
                to_agent=lead.agent_id,
                sender=member,
                data={"task_id": view.task_id, "negotiation_id": neg.opened.negotiation_id},
            )
            note = f"waiting for {lead.name} to answer: {objection_line(member.name, objection)}"
            if "blocked" in allowed_targets(view.status):
                await self.ctx.tasks.set_status(
                    view.task_id, "blocked", by=member.agent_id, note=note, also=[countered, offer]
                )
            else:
                await self.ctx.log.append(countered, offer)
        return (
            f"Your objection went to {lead.name}, who assigned the task. Stop here and wait: "
            f"the answer comes as a message within {window:.0f} s; without one, the task stays "
            "yours."
        )

    async def _by_policy(
        self, neg: Negotiation, view: TaskView, countered: NegotiationCountered, obj: Objection
    ) -> str:
        excluded = {*self.declined(view.task_id), neg.opened.agent_id}
        verdict = policy_verdict(
            view,
            obj,
            self.ctx.roster.members(),
            self.stats,
            self.ctx.tasks.board.load(),
            excluded,
        )
        prefix: list[Event] = [countered]
        if obj.counter_kind in ("clarify", "conflict"):
            chain = self._askees(view)
            if chain is not None:
                prefix.append(
                    self.ctx.messages.message(
                        "negotiation_offer",
                        f"About task {view.title!r} (id {view.task_id}): "
                        f"{objection_line(neg.opened.agent_name, obj)}. Answer "
                        f"{neg.opened.agent_name} with peer_message.",
                        to_agent=chain.agent_id,
                        from_name=neg.opened.agent_name,
                        data={"task_id": view.task_id},
                    )
                )
        outcome = await apply_outcome(
            self.ctx,
            neg,
            prefix,
            verdict.target,
            "policy",
            verdict.reason,
            declined=obj.declines,
            tell=None,
        )
        if outcome == "reassigned" and verdict.target is not None:
            return (
                f"Task {view.title!r} went to {verdict.target.name} ({verdict.reason}). It is "
                "not yours now: end your turn with a one-line reply."
            )
        return f"Task {view.title!r} stays yours ({verdict.reason}). Carry on with it."

    def _askees(self, view: TaskView) -> Member | None:
        creator = self.ctx.member(view.created_by)
        if creator is not None:
            return creator
        chain = self.ctx.escalation_chain(view.team_id)
        return chain[0] if chain else None

    async def resolve(
        self,
        decider: Member | None,
        task_id: str,
        resolution: Resolution,
        *,
        target: Member | None = None,
        reason: str = "",
    ) -> str:
        """The assigner (a lead, or the user when ``decider`` is None) answers an objection."""
        async with self._lock:
            neg = self.open_for(task_id)
            if neg is None or neg.countered is None:
                title = self._title(task_id)
                raise ToolError(
                    f"Task {title!r} (id {task_id}) has no objection waiting for an answer."
                )
            self._check_decider(decider, neg)
            view = self.ctx.tasks.task(task_id)
            who = "user" if decider is None else decider.name
            excluded = {*self.declined(task_id), neg.opened.agent_id}
            c = neg.countered
            declined = c.response == "decline" or c.counter_kind == "suggest_agent"
            if resolution == "override":
                chosen = None
                why = reason or f"{who} keeps the assignment"
            elif resolution == "reassign":
                if target is None:
                    raise ToolError('resolution "reassign" needs the agent to give the task to.')
                chosen = target
                why = reason or f"{who} reassigned it"
            elif c.suggested_agent_id is not None:
                chosen = self.ctx.member(c.suggested_agent_id)
                why = reason or f"{who} accepted the suggestion"
            elif c.response == "decline":
                verdict = policy_verdict(
                    view,
                    Objection(response="decline"),
                    self.ctx.roster.members(),
                    self.stats,
                    self.ctx.tasks.board.load(),
                    excluded,
                )
                chosen, why = verdict.target, reason or verdict.reason
            else:
                chosen, why = None, reason or f"{who} answered; the assignment stands"
            if chosen is not None:
                refusal = can_take(chosen, view, excluded)
                if refusal is not None:
                    raise ToolError(f"Cannot give the task to {chosen.name}: {refusal}.")
            outcome = await apply_outcome(
                self.ctx, neg, [], chosen, who, why, declined=declined, tell=neg.opened.agent_id
            )
        moved = f" to {chosen.name}" if chosen is not None and outcome == "reassigned" else ""
        return f"Negotiation on {view.title!r} resolved: {outcome}{moved} ({why})."

    def _check_decider(self, decider: Member | None, neg: Negotiation) -> None:
        if decider is None or decider.agent_id == neg.opened.assigner_id:
            return
        if decider.role in COORDINATION_ROLES and decider.team_id == neg.opened.team_id:
            return
        raise ToolError(
            f"Only {neg.opened.assigner} (who assigned the task) or a lead of its team may "
            "resolve this negotiation."
        )

    # -- windows ----------------------------------------------------------------------------------

    def _arm(self, negotiation_id: str) -> None:
        async def close_at_deadline() -> None:
            while True:
                neg = self._by_id.get(negotiation_id)
                if neg is None or not neg.open:
                    return
                delay = neg.deadline - self.ctx.clock.now()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)  # a counter may move the deadline: look again
            async with self._lock:
                if neg.open:
                    await self._expire(neg)

        self.ctx.timers.run(f"negotiation:{negotiation_id}", close_at_deadline)

    async def _expire(self, neg: Negotiation) -> None:
        if neg.countered is None:
            resolved = resolution_event(
                self.ctx, neg, "kept", "window", None, "no objection in the window"
            )
            await self.ctx.log.append(resolved)
            return
        c = neg.countered
        declined = c.response == "decline" or c.counter_kind == "suggest_agent"
        await apply_outcome(
            self.ctx,
            neg,
            [],
            None,
            "window",
            "no answer within the window; the assignment stands",
            declined=declined,
            tell=neg.opened.agent_id,
        )

    def _title(self, task_id: str) -> str:
        view = self.ctx.tasks.board.get(TaskId(task_id))
        return task_id if view is None else view.title
