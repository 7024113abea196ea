"""The task service: every task command checks the board, then appends the events.

How this works and why:

* **Check, append, apply.** A command asks the pure :class:`~loomkin.core.tasks.TaskBoard`
  whether the change is valid (a clear error if not), appends the events, and the board
  applies them as a projection of the log (:meth:`TaskService.apply`). Commands run one at a
  time under a lock, and every check of a task's status happens under it, so a check is never
  invalidated by another command before its append.
* **One decision, one batch.** A command that an agent's decision entails (cancelling its
  task when a cancel is applied, releasing it when the agent gives up, settling it when the
  loop ends) takes the agent's own events as ``also`` and appends them in the same batch as
  the task's, ahead of them: a crash can never leave one half of the decision recorded.
* **Consequences are events too.** Applying a live event may raise effective priorities
  (priority inheritance); the service appends ``TaskPriorityChanged`` events with their reason.
  The scheduler (another projection) reacts to the events that can make tasks ready and
  assigns them (nothing is merely announced).
* **Agents hear about tasks through messages.** An assignment is committed together with a
  ``task_assigned`` message to the new owner; new partial output of a ``requires_output``
  predecessor is sent to the dependents' owners as it arrives. What those messages say is the
  agent layer's text, given through the :class:`~loomkin.tasks.notices.TaskNotices` port.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from loomkin.core.events import (
    DependencyAdded,
    Event,
    MessageSent,
    MilestoneEmitted,
    PartialResultPublished,
    RecordedEvent,
    TaskAssigned,
    TaskCreated,
    TaskPriorityChanged,
    TaskStatusChanged,
)
from loomkin.core.messages import MessageType, tier_of
from loomkin.core.records import DepKind
from loomkin.core.taskstates import allowed_targets, check_table
from loomkin.core.taskview import Handoff, TaskView
from loomkin.errors import NotFound, UserError
from loomkin.ids import AgentId, MessageId, SessionId, TaskId, TeamId, new_id
from loomkin.tasks.claims import ClaimCommands
from loomkin.tasks.speculative import SpeculativeCommands

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.records import TaskStatus
    from loomkin.core.tasks import TaskBoard
    from loomkin.runtime.eventlog import EventLog
    from loomkin.tasks.notices import TaskNotices

__all__ = [
    "DependencySpec",
    "Handoff",
    "NegotiationGate",
    "TaskService",
    "Worker",
    "WorkerRef",
]

_OPEN: frozenset[str] = frozenset(
    {"assigned", "in_progress", "paused", "blocked", "partially_complete", "pending_speculative"}
)
_LISTENING: frozenset[str] = frozenset({"in_progress", "paused", "blocked", "partially_complete"})
"""Statuses of a started dependent that still consumes its predecessor's new output. A stage
that waits (blocked) for the next chunk must hear of it; an ``assigned`` one is not told,
since the brief it reads when it starts already carries every chunk so far."""


class Worker(Protocol):
    """The agent a task command acts for (the task layer knows agents only by id and name)."""

    @property
    def agent_id(self) -> AgentId: ...
    @property
    def name(self) -> str: ...
    @property
    def team_id(self) -> TeamId: ...


class NegotiationGate(Protocol):
    """Opens a negotiation on an assignment (implemented by the coordination layer)."""

    def opened(self, view: TaskView, worker: Worker, *, by: str) -> Event | None:
        """The event opening a negotiation on giving ``view`` to ``worker`` (or ``None``).

        It is appended in the assignment's own batch: an assignment is never committed
        without the window its assignee has to answer it.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRef:
    """A plain :class:`Worker` (used by the scheduler, which sees agents as records)."""

    agent_id: AgentId
    name: str
    team_id: TeamId


@dataclass(frozen=True, slots=True, kw_only=True)
class DependencySpec:
    """A dependency to add when creating a task."""

    depends_on: TaskId
    kind: DepKind = "blocks"
    milestone: str | None = None


class TaskService(ClaimCommands, SpeculativeCommands):
    """Commands on the task board of one runtime (all sessions).

    Work stealing's claim and capacity moves are in :class:`~loomkin.tasks.claims.ClaimCommands`.
    """

    def __init__(self, log: EventLog, board: TaskBoard, notices: TaskNotices) -> None:
        self.log = log
        self.board = board
        self.notices = notices
        self._lock = asyncio.Lock()
        self._priority_events: list[TaskPriorityChanged] = []
        self._gates: dict[SessionId, NegotiationGate] = {}

    def set_negotiation_gate(self, session_id: SessionId, gate: NegotiationGate | None) -> None:
        """Open negotiations on the assignments of ``session_id`` through ``gate`` (or stop)."""
        if gate is None:
            self._gates.pop(session_id, None)
        else:
            self._gates[session_id] = gate

    # -- projection -------------------------------------------------------------------------------

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Apply to the board; live priority changes become events at the next append."""
        changes = self.board.apply(recorded.event)
        if live:
            for change in changes.priority_changes:
                self._priority_events.append(self.board.priority_event(change))

    def caught_up(self) -> None:
        """Nothing to do: the board is whole once replayed."""

    async def _append(self, *events: Event) -> None:
        await self.log.append(*events)
        while self._priority_events:
            pending, self._priority_events = self._priority_events, []
            await self.log.append(*pending)

    # -- queries ----------------------------------------------------------------------------------

    def task(self, task_id: str) -> TaskView:
        """Return the task ``task_id`` (raises ``NotFound``)."""
        return self.board.task(TaskId(task_id))

    def owner_of(self, task_id: str) -> AgentId | None:
        """Return the owner of the task, if it exists and has one."""
        view = self.board.get(TaskId(task_id))
        return None if view is None or view.owner is None else view.owner.agent_id

    def is_open(self, task_id: str) -> bool:
        """True while the task is assigned or being worked on."""
        view = self.board.get(TaskId(task_id))
        return view is not None and view.status in _OPEN

    # -- commands ---------------------------------------------------------------------------------

    async def create(
        self,
        *,
        session_id: SessionId,
        team_id: TeamId,
        title: str,
        description: str = "",
        priority: int = 3,
        role: str = "",
        created_by: AgentId | None = None,
        work_s: float = 0.0,
        depends_on: Sequence[DependencySpec] = (),
        assign_to: Worker | None = None,
        assigned_by: str = "",
        task_id: TaskId | None = None,
        also: Sequence[Event] = (),
    ) -> TaskId:
        """Create a task (and its dependencies, atomically).

        ``assign_to`` gives it to that agent in the same batch (with its ``task_assigned``
        message): a crash never leaves the task created but not given, for the scheduler to
        hand to someone else. ``also``: the deciding party's events, appended ahead in the
        same batch (they may name ``task_id``, given in advance).
        """
        task_id = task_id or TaskId(new_id("task_"))
        async with self._lock:
            self.board.check_create(task_id, title, priority)
            for dep in depends_on:
                if self.board.get(dep.depends_on) is None:
                    raise NotFound(f"no task {dep.depends_on!r} to depend on")
            created = TaskCreated(
                session_id=session_id,
                task_id=task_id,
                team_id=team_id,
                title=title,
                description=description,
                priority=priority,
                role=role,
                created_by=created_by,
                work_s=work_s,
            )
            deps = [
                DependencyAdded(
                    session_id=session_id,
                    task_id=task_id,
                    depends_on=d.depends_on,
                    dep_kind=d.kind,
                    milestone=d.milestone,
                    added_by=created_by,
                )
                for d in depends_on
            ]
            given: list[Event] = []
            if assign_to is not None:
                view = TaskView(
                    task_id=task_id,
                    session_id=session_id,
                    team_id=team_id,
                    title=title,
                    description=description,
                    priority=priority,
                    role=role,
                    created_by=created_by,
                )
                given = self._assignment(
                    view, assign_to, by=assigned_by, reason=f"assigned by {assigned_by}"
                )
            await self._append(*also, created, *deps, *given)
        return task_id

    async def assign(
        self, task_id: TaskId, worker: Worker, *, by: str = "scheduler", reason: str = ""
    ) -> None:
        """Give the task to ``worker``; the owner is told by a ``task_assigned`` message."""
        async with self._lock:
            view = self.task(task_id)
            if not self.board.check_assign(task_id, worker.agent_id):
                return
            await self._append(*self._assignment(view, worker, by=by, reason=reason))

    async def reassign(
        self,
        task_id: TaskId,
        worker: Worker,
        *,
        by: str,
        reason: str,
        also: Sequence[Event] = (),
    ) -> bool:
        """Take an open task from its owner and give it to ``worker``, in one batch.

        The release (back to ``pending``, which tells the old owner it lost the task), the
        assignment and its message, and ``also`` (the deciding party's own events, ahead of
        them) are one append. Returns ``False`` (appending only ``also``) when the task's
        status does not allow a release, or ``worker`` owns it already.
        """
        async with self._lock:
            view = self.task(task_id)
            owner = None if view.owner is None else view.owner.agent_id
            if owner == worker.agent_id or "pending" not in allowed_targets(view.status):
                if also:
                    await self._append(*also)
                return False
            released = TaskStatusChanged(
                session_id=view.session_id,
                task_id=task_id,
                status="pending",
                previous=view.status,
                note=reason,
            )
            fresh = replace(view, status="pending", owner=None)
            given = self._assignment(fresh, worker, by=by, reason=reason)
            await self._append(*also, released, *given)
            return True

    def _assignment(self, view: TaskView, worker: Worker, *, by: str, reason: str) -> list[Event]:
        """``TaskAssigned`` and the ``task_assigned`` message telling the new owner."""
        assigned = TaskAssigned(
            session_id=view.session_id,
            task_id=view.task_id,
            owner=worker.agent_id,
            owner_name=worker.name,
            assigned_by=by,
            reason=reason,
        )
        notice = self._message(
            view,
            msg_type="task_assigned",
            to_agent=worker.agent_id,
            content=self.notices.assigned(view, reason),
            data={"task_id": view.task_id},
        )
        gate = self._gates.get(view.session_id)
        opened = None if gate is None else gate.opened(view, worker, by=by)
        return [assigned, notice] if opened is None else [assigned, opened, notice]

    async def set_status(
        self,
        task_id: TaskId,
        status: TaskStatus,
        *,
        by: AgentId | None = None,
        note: str = "",
        result: str | None = None,
        handoff: Handoff | None = None,
        also: Sequence[Event] = (),
    ) -> None:
        """Move the task to ``status`` (refused transitions raise ``InvalidTransition``).

        ``also``: the deciding party's own events, appended ahead in the same batch.
        """
        async with self._lock:
            await self._set_status(
                task_id, status, by=by, note=note, result=result, handoff=handoff, also=also
            )

    async def move_if(
        self,
        task_id: str,
        expected: TaskStatus | frozenset[TaskStatus],
        status: TaskStatus,
        *,
        by: AgentId | None,
        note: str = "",
        also: Sequence[Event] = (),
    ) -> bool:
        """Move the task from ``expected`` (one status or a set) to ``status``, with ``also``.

        One batch. When the task is not in ``expected`` (or does not exist), only ``also`` is
        appended and False is returned: the deciding party's events never depend on the task's.
        """
        wanted = frozenset({expected}) if isinstance(expected, str) else expected
        async with self._lock:
            view = self.board.get(TaskId(task_id))
            if view is None or view.status not in wanted:
                if also:
                    await self._append(*also)
                return False
            await self._set_status(view.task_id, status, by=by, note=note, also=also)
            return True

    async def _set_status(
        self,
        task_id: TaskId,
        status: TaskStatus,
        *,
        by: AgentId | None,
        note: str = "",
        result: str | None = None,
        handoff: Handoff | None = None,
        also: Sequence[Event] = (),
    ) -> None:
        view = self.task(task_id)
        if view.status == "pending_speculative" and status in ("completed", "pending"):
            # Speculative work completes only tentatively (it merges once its assumptions
            # hold); released, it is discarded first (the speculation service cleans up).
            if status == "pending":
                also = [*also, self._status_event(view, "discarded_tentative", note, by)]
                view = replace(view, status="discarded_tentative")
            else:
                status = "completed_tentative"
        if view.status == "discarded_tentative":
            check_table(view, status)
        else:
            self.board.check_status(task_id, status)
        h = handoff or Handoff()
        notices = self._finish_notices(view, status, result, by)
        if status == "completed":
            notices += self._final_output_notices(view, result, h, skip=view.created_by)
        await self._append(
            *also,
            TaskStatusChanged(
                session_id=view.session_id,
                task_id=task_id,
                status=status,
                previous=view.status,
                note=note,
                result=result,
                actions_taken=h.actions_taken,
                files_changed=h.files_changed,
                decisions=h.decisions,
                open_questions=h.open_questions,
                by=by,
            ),
            *notices,
        )

    def _status_event(
        self, view: TaskView, status: TaskStatus, note: str, by: AgentId | None
    ) -> TaskStatusChanged:
        return TaskStatusChanged(
            session_id=view.session_id,
            task_id=view.task_id,
            status=status,
            previous=view.status,
            note=note,
            by=by,
        )

    def _finish_notices(
        self, view: TaskView, status: TaskStatus, result: str | None, by: AgentId | None
    ) -> list[MessageSent]:
        """Tell the task's creator when it ends (unless the creator ended it)."""
        if status not in ("completed", "failed") or view.created_by in (None, by):
            return []
        assert view.created_by is not None
        return [
            self._message(
                view,
                msg_type="task_completed" if status == "completed" else "task_failed",
                to_agent=view.created_by,
                content=self.notices.ended(view, status, result),
                data={"task_id": view.task_id},
            )
        ]

    def _final_output_notices(
        self, view: TaskView, result: str | None, handoff: Handoff, *, skip: AgentId | None
    ) -> list[MessageSent]:
        """Give a completed task's final output to the dependents already consuming it.

        A ``requires_output`` dependent that started on a partial chunk (or a milestone) read
        the output so far in its brief and the later chunks as ``partial_output`` messages;
        without this notice the final result would never reach it, and it could not tell
        that the stream has ended.
        """
        text = self.notices.final_output(view, result, handoff)
        notified: set[AgentId] = set() if skip is None else {skip}
        notices = []
        for dep in self.board.dependents(view.task_id):
            dependent = self.board.task(dep.task_id)
            if dep.kind != "requires_output" or dependent.owner is None:
                continue
            agent = dependent.owner.agent_id
            if dependent.status not in _LISTENING or agent in notified:
                continue
            notified.add(agent)
            notices.append(
                self._message(
                    view,
                    msg_type="task_completed",
                    to_agent=agent,
                    content=text,
                    data={"task_id": view.task_id},
                )
            )
        return notices

    async def complete(
        self, task_id: TaskId, *, by: AgentId | None, result: str, handoff: Handoff | None = None
    ) -> None:
        """Complete the task with its result and hand-off (an empty result is refused)."""
        if not result.strip() and (handoff is None or handoff == Handoff()):
            raise UserError(
                f"task {task_id!r}: a completion needs a result or a hand-off saying what was done"
            )
        await self.set_status(task_id, "completed", by=by, result=result, handoff=handoff)

    async def release(self, task_id: TaskId, *, reason: str, also: Sequence[Event] = ()) -> None:
        """Put an owned task back to pending so another agent can take it.

        ``also``: the releasing decision's own events, appended ahead in the same batch
        (alone when the task is no longer open).
        """
        async with self._lock:
            if self.is_open(task_id):
                await self._set_status(task_id, "pending", by=None, note=reason, also=also)
            elif also:
                await self._append(*also)

    async def add_dependency(
        self,
        task_id: TaskId,
        depends_on: TaskId,
        *,
        kind: DepKind = "blocks",
        milestone: str | None = None,
        by: AgentId | None = None,
    ) -> bool:
        """Add a dependency while work runs; a cycle is refused with ``TaskCycleError``."""
        async with self._lock:
            view = self.task(task_id)
            if not self.board.check_dependency(task_id, depends_on, kind, milestone):
                return False
            await self._append(
                DependencyAdded(
                    session_id=view.session_id,
                    task_id=task_id,
                    depends_on=depends_on,
                    dep_kind=kind,
                    milestone=milestone,
                    added_by=by,
                )
            )
            return True

    async def emit_milestone(
        self, task_id: TaskId, name: str, *, by: AgentId, note: str = ""
    ) -> bool:
        """Record a named milestone of the task (owner only; idempotent per name)."""
        async with self._lock:
            view = self.task(task_id)
            if not self.board.check_milestone(task_id, name, by):
                return False
            await self._append(
                MilestoneEmitted(
                    session_id=view.session_id, task_id=task_id, name=name, by=by, note=note
                )
            )
            return True

    async def publish_partial(
        self,
        task_id: TaskId,
        content: str,
        *,
        by: AgentId,
        completed_items: int | None = None,
        total_items: int | None = None,
    ) -> int:
        """Publish the next chunk of the task's output; returns its sequence number."""
        async with self._lock:
            view = self.task(task_id)
            seq = (view.partial_chunks[-1].seq if view.partial_chunks else 0) + 1
            self.board.check_partial(
                task_id, seq, by=by, completed_items=completed_items, total_items=total_items
            )
            chunk = PartialResultPublished(
                session_id=view.session_id,
                task_id=task_id,
                seq=seq,
                content=content,
                completed_items=completed_items,
                total_items=total_items,
                by=by,
            )
            notices = self._partial_notices(view, seq, content, completed_items, total_items)
            # The first chunk of work in progress marks it partially complete, in the chunk's
            # own batch (one decision, one append); later chunks keep that status, and
            # speculative work stays speculative.
            moved = []
            if view.status == "in_progress":
                self.board.check_status(task_id, "partially_complete")
                moved.append(
                    self._status_event(view, "partially_complete", f"partial result {seq}", by)
                )
            await self._append(chunk, *moved, *notices)
            return seq

    def _partial_notices(
        self,
        view: TaskView,
        seq: int,
        content: str,
        completed: int | None,
        total: int | None,
    ) -> list[MessageSent]:
        text = self.notices.partial_output(view, seq, content, completed, total)
        notices = []
        for dep in self.board.dependents(view.task_id):
            dependent = self.board.task(dep.task_id)
            if dep.kind != "requires_output" or dependent.owner is None:
                continue
            if dependent.status not in _LISTENING:
                continue
            notices.append(
                self._message(
                    view,
                    msg_type="partial_output",
                    to_agent=dependent.owner.agent_id,
                    content=text,
                    data={"task_id": view.task_id, "seq": seq},
                )
            )
        return notices

    # -- what agents need -------------------------------------------------------------------------

    async def start_for(self, worker: Worker, task_id: str) -> TaskView | None:
        """Start ``task_id`` for its owner ``worker``; the task as started, or ``None``.

        ``None`` when the task was reassigned, withdrawn, finished or cancelled since the
        assignment was sent (nothing to start).
        """
        async with self._lock:  # check and start atomically: two notices may race here
            view = self.board.get(TaskId(task_id))
            if view is None or view.owner is None or view.owner.agent_id != worker.agent_id:
                return None
            if view.status == "assigned":
                await self._set_status(view.task_id, "in_progress", by=worker.agent_id)
            elif view.status not in ("in_progress", "partially_complete", "pending_speculative"):
                return None
        return self.board.task(view.task_id)

    async def settle_after_loop(
        self,
        worker: Worker,
        task_id: str,
        outcome: str,
        text: str,
        *,
        also: Sequence[Event] = (),
    ) -> None:
        """Close a task its owner's loop ended without closing (after the completion nudge).

        ``also``: the loop's own closing events, appended ahead in the same batch.
        """
        tid = TaskId(task_id)
        async with self._lock:
            view = self.board.get(tid)
            open_ = view is not None and view.status in (
                "in_progress",
                "partially_complete",
                "pending_speculative",
            )
            if open_ and outcome == "final" and text.strip():
                await self._set_status(
                    tid,
                    "completed",
                    by=worker.agent_id,
                    result=text,
                    note="completed from the agent's final answer (it did not call task_complete)",
                    also=also,
                )
            elif open_ and outcome in ("max_iterations", "error", "final"):
                await self._set_status(
                    tid, "failed", by=worker.agent_id, result=text, note=outcome, also=also
                )
            elif also:
                await self._append(*also)

    async def cancel_with_partial(
        self, worker: Worker, task_id: str, partial: str, *, also: Sequence[Event] = ()
    ) -> None:
        """Cancel the task, recording what was done so far as its result.

        ``also``: the cancel's own events (applied, status), appended ahead in the same batch.
        """
        tid = TaskId(task_id)
        async with self._lock:
            if self.is_open(tid):
                await self._set_status(
                    tid,
                    "cancelled",
                    by=worker.agent_id,
                    result=partial,
                    note="cancelled by user",
                    also=also,
                )
            elif also:
                await self._append(*also)

    # -- helpers ----------------------------------------------------------------------------------

    def _message(
        self,
        view: TaskView,
        *,
        msg_type: MessageType,
        to_agent: AgentId,
        content: str,
        data: dict[str, str | int],
    ) -> MessageSent:
        return MessageSent(
            session_id=view.session_id,
            message_id=MessageId(new_id("msg_")),
            msg_type=msg_type,
            tier=tier_of(msg_type),
            content=content,
            from_name="task board",
            to_agent=to_agent,
            data=dict(data),
        )
