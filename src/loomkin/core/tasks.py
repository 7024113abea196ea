"""The task board: a pure projection of task events, plus the checks that guard them.

How this works and why:

* :class:`TaskBoard` folds task events (``apply``) into :class:`TaskView` records and a
  :class:`~loomkin.core.taskgraph.TaskGraph`. It is the single source of truth the task
  service, the scheduler, the tools and the benchmark read; it does no I/O and never
  appends anything itself.
* **Check, append, apply.** The service calls a ``check_*`` method *before* appending an
  event; the check raises a clear :mod:`loomkin.errors` error (and mutates nothing) when
  the event would be wrong. ``apply`` trusts the log, because the log is the record of what
  happened: it only refuses what would corrupt the board's structure (an event about an
  unknown task, an edge that would close a cycle), and it counts those in
  :attr:`TaskBoard.ignored`.
* **Transitions** are data (:mod:`loomkin.core.taskstates`). A task starts
  (``assigned → in_progress``) only when its blocking dependencies are met; dependencies
  added while a task already runs do not stop it.
* **What ``apply`` reports.** Each call returns :class:`BoardChanges`: exactly the tasks the
  event made available (pending, unowned, every blocking dependency met) and every effective
  priority it moved. The Elixir system announced *all* available tasks after each
  completion and assigned none (elixir notes §24 item 9); the service uses ``newly_ready``
  to assign exactly the new ones, and ``priority_changes`` to append
  :class:`TaskPriorityChanged` events with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_never, get_args

from loomkin.core.events.autoscale import CapacityMoved
from loomkin.core.events.tasks import (
    DependencyAdded,
    MilestoneEmitted,
    PartialResultPublished,
    TaskAssigned,
    TaskClaimed,
    TaskCreated,
    TaskPriorityChanged,
    TaskStatusChanged,
)
from loomkin.core.records import DepKind, TaskStatus
from loomkin.core.taskgraph import FINISHED_STATUSES, Dependency, TaskGraph
from loomkin.core.taskoutput import format_predecessor_outputs
from loomkin.core.taskstates import (
    ACTIVE_STATUSES,
    CHUNK_STATUSES,
    TRANSITIONS,
    check_priority_value,
    check_progress,
    check_table,
    check_transition,
)
from loomkin.core.taskview import (
    BoardChanges,
    Handoff,
    PartialChunk,
    PriorityChange,
    TaskOwner,
    TaskView,
)
from loomkin.errors import InvalidTransition, NotFound, PolicyRefused, TaskCycleError, UserError
from loomkin.ids import TeamId

if TYPE_CHECKING:
    from loomkin.core.events.base import Event
    from loomkin.core.events.tasks import AnyTaskEvent
    from loomkin.ids import AgentId, TaskId

__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "TRANSITIONS",
    "BoardChanges",
    "Dependency",
    "Handoff",
    "PartialChunk",
    "PriorityChange",
    "TaskBoard",
    "TaskOwner",
    "TaskView",
    "check_transition",
]

_TASK_EVENTS = (
    TaskCreated,
    TaskAssigned,
    TaskClaimed,
    TaskStatusChanged,
    DependencyAdded,
    MilestoneEmitted,
    PartialResultPublished,
    TaskPriorityChanged,
)
_DEP_KINDS: tuple[DepKind, ...] = get_args(DepKind)


_NO_CHANGES = BoardChanges()


@dataclass(slots=True, kw_only=True)
class _Record:
    """Mutable per-task state behind a :class:`TaskView` (internal)."""

    created: TaskCreated
    order: int
    team_id: TeamId
    """The team whose board holds the task (its creator's, until capacity moves it)."""
    status: TaskStatus = "pending"
    owner: TaskOwner | None = None
    priority: int = 3
    result: str | None = None
    note: str = ""
    chunks: list[PartialChunk] | None = None
    completed_items: int | None = None
    total_items: int | None = None
    milestones: tuple[str, ...] = ()
    handoff: Handoff | None = None
    view: TaskView | None = None
    """Cached snapshot; dropped whenever anything above (or the effective priority) changes."""


class TaskBoard:
    """Projection of task events: tasks, dependencies, readiness and effective priorities.

    Covers every team of a session (dependencies may cross teams). Not thread-safe; one
    owner (the task service) applies events in log order.
    """

    __slots__ = ("_graph", "_newly_ready", "_ready", "_records", "ignored")

    def __init__(self) -> None:
        self._records: dict[TaskId, _Record] = {}
        self._graph = TaskGraph()
        self._ready: set[TaskId] = set()
        self._newly_ready: dict[TaskId, None] = {}
        self.ignored = 0
        """How many task events ``apply`` skipped (unknown task, duplicate, cycle)."""

    # ---- projection --------------------------------------------------------------------

    def apply(self, event: Event) -> BoardChanges:
        """Fold one event into the board; events that are not about tasks are ignored.

        Returns:
            The tasks this event made available and the effective priorities it moved.
        """
        if isinstance(event, CapacityMoved):
            self._on_moved(event)
            return self._collect()
        if not isinstance(event, _TASK_EVENTS):
            return _NO_CHANGES
        self._dispatch(event)
        return self._collect()

    def _dispatch(self, event: AnyTaskEvent) -> None:
        if not isinstance(event, TaskCreated) and event.task_id not in self._records:
            self.ignored += 1
            return
        match event:
            case TaskCreated():
                self._on_created(event)
            case TaskAssigned() | TaskClaimed():
                self._on_owner(
                    event.task_id, TaskOwner(agent_id=event.owner, name=event.owner_name)
                )
            case TaskStatusChanged():
                self._on_status(event)
            case DependencyAdded():
                self._on_dependency(event)
            case MilestoneEmitted():
                self._touch(event.task_id)
                if self._graph.add_milestone(event.task_id, event.name):
                    rec = self._records[event.task_id]
                    rec.milestones = (*rec.milestones, event.name)
            case PartialResultPublished():
                self._on_partial(event)
            case TaskPriorityChanged():
                self._touch(event.task_id).priority = event.priority
                self._graph.set_priority(event.task_id, event.priority)
            case _:
                assert_never(event)

    def _on_created(self, event: TaskCreated) -> None:
        if event.task_id in self._records:
            self.ignored += 1
            return
        order = len(self._records)
        self._records[event.task_id] = _Record(
            created=event, order=order, team_id=event.team_id, priority=event.priority
        )
        self._graph.add_task(event.task_id, event.priority, order)
        self._refresh_ready(event.task_id)

    def _on_moved(self, event: CapacityMoved) -> None:
        if event.task_id not in self._records:
            self.ignored += 1
            return
        self._touch(event.task_id).team_id = event.to_team
        self._refresh_ready(event.task_id)

    def _on_owner(self, task_id: TaskId, owner: TaskOwner) -> None:
        rec = self._touch(task_id)
        rec.owner = owner
        if rec.status != "assigned":
            rec.status = "assigned"
            self._graph.set_status(task_id, "assigned")
        self._refresh_ready(task_id)

    def _on_status(self, event: TaskStatusChanged) -> None:
        rec = self._touch(event.task_id)
        rec.status = event.status
        rec.note = event.note
        if event.status == "pending":
            rec.owner = None
            rec.result = None
            rec.handoff = None
        if event.result is not None:
            rec.result = event.result
        if event.status == "completed":
            rec.handoff = Handoff(
                actions_taken=event.actions_taken,
                files_changed=event.files_changed,
                decisions=event.decisions,
                open_questions=event.open_questions,
            )
        self._graph.set_status(event.task_id, event.status)
        self._refresh_ready(event.task_id)

    def _on_dependency(self, event: DependencyAdded) -> None:
        dep = Dependency(
            task_id=event.task_id,
            depends_on=event.depends_on,
            kind=event.dep_kind,
            milestone=event.milestone,
        )
        graph = self._graph
        if (
            dep.depends_on not in graph
            or graph.has_edge(dep)
            or (dep.blocking and graph.find_cycle(dep.task_id, dep.depends_on) is not None)
            or dep.task_id == dep.depends_on
        ):
            self.ignored += 1
            return
        graph.add_edge(dep)
        self._refresh_ready(dep.task_id)

    def _on_partial(self, event: PartialResultPublished) -> None:
        rec = self._touch(event.task_id)
        chunks = rec.chunks if rec.chunks is not None else []
        if chunks and event.seq <= chunks[-1].seq:
            self.ignored += 1  # a re-delivered chunk
            return
        chunks.append(
            PartialChunk(
                seq=event.seq,
                content=event.content,
                completed_items=event.completed_items,
                total_items=event.total_items,
            )
        )
        rec.chunks = chunks
        if event.completed_items is not None:
            rec.completed_items = event.completed_items
        if event.total_items is not None:
            rec.total_items = event.total_items
        self._graph.mark_output(event.task_id)

    def _touch(self, task_id: TaskId) -> _Record:
        rec = self._records[task_id]
        rec.view = None
        return rec

    def _refresh_ready(self, task_id: TaskId) -> None:
        rec = self._records[task_id]
        ready = rec.status == "pending" and rec.owner is None and self._graph.is_ready(task_id)
        if ready and task_id not in self._ready:
            self._ready.add(task_id)
            self._newly_ready[task_id] = None
        elif not ready:
            self._ready.discard(task_id)
            self._newly_ready.pop(task_id, None)

    def _collect(self) -> BoardChanges:
        graph_changes = self._graph.take_changes()
        for task_id in graph_changes.unblocked:
            self._refresh_ready(task_id)
        for task_id in graph_changes.retagged:
            self._records[task_id].view = None
        changes = [
            self._priority_change(task_id, old, new)
            for task_id, old, new in graph_changes.priorities
        ]
        if not self._newly_ready and not changes:
            return _NO_CHANGES
        newly = sorted(self._newly_ready, key=self._rank)
        self._newly_ready.clear()
        return BoardChanges(newly_ready=tuple(newly), priority_changes=tuple(changes))

    def _priority_change(self, task_id: TaskId, old: int, new: int) -> PriorityChange:
        inherited = self._graph.inherited_from(task_id)
        if inherited is None:
            reason = f"base priority p{new}" if new < old else f"back to base priority p{new}"
            origin = None
        else:
            origin, via = inherited
            reason = f"inherited from {origin} (p{new})"
            if via != origin:
                reason += f" via {via}"
        return PriorityChange(
            task_id=task_id, old=old, new=new, inherited_from=origin, reason=reason
        )

    def _rank(self, task_id: TaskId) -> tuple[int, int]:
        return self._graph.effective(task_id), self._records[task_id].order

    # ---- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._records

    def task(self, task_id: TaskId) -> TaskView:
        """Return the task's current view.

        Raises:
            NotFound: no task has this id.
        """
        rec = self._record(task_id)
        if rec.view is None:
            rec.view = self._build_view(rec)
        return rec.view

    def get(self, task_id: TaskId) -> TaskView | None:
        """Return the task's current view, or ``None`` when it does not exist."""
        return self.task(task_id) if task_id in self._records else None

    def tasks(self, team_id: TeamId | None = None) -> list[TaskView]:
        """Every task (of one team when ``team_id`` is given), in creation order."""
        return [
            self.task(task_id)
            for task_id, rec in self._records.items()
            if team_id is None or rec.team_id == team_id
        ]

    def dependencies(self, task_id: TaskId) -> tuple[Dependency, ...]:
        """Edges where ``task_id`` is the dependent, in the order they were added."""
        self._record(task_id)
        return self._graph.deps(task_id)

    def dependents(self, task_id: TaskId) -> tuple[Dependency, ...]:
        """Edges where ``task_id`` is the predecessor, in the order they were added."""
        self._record(task_id)
        return self._graph.dependents(task_id)

    def is_ready(self, task_id: TaskId) -> bool:
        """Whether every blocking dependency of the task is met (whatever its status)."""
        self._record(task_id)
        return self._graph.is_ready(task_id)

    def waiting_on(self, task_id: TaskId) -> tuple[Dependency, ...]:
        """The task's unmet blocking dependencies, in the order they were added."""
        self._record(task_id)
        return self._graph.unmet(task_id)

    def ready_tasks(self, team_id: TeamId | None = None) -> list[TaskView]:
        """Available tasks (pending, unowned, ready) by (effective priority, creation order)."""
        ids = sorted(self._ready, key=self._rank)
        views = [self.task(task_id) for task_id in ids]
        return views if team_id is None else [v for v in views if v.team_id == team_id]

    def effective_priority(self, task_id: TaskId) -> int:
        """The task's effective priority: its base, or better when a dependent lends one."""
        self._record(task_id)
        return self._graph.effective(task_id)

    def load(self) -> dict[AgentId, int]:
        """Number of tasks each owner holds in an :data:`ACTIVE_STATUSES` status."""
        counts: dict[AgentId, int] = {}
        for rec in self._records.values():
            if rec.owner is not None and rec.status in ACTIVE_STATUSES:
                counts[rec.owner.agent_id] = counts.get(rec.owner.agent_id, 0) + 1
        return counts

    def new_partial_chunks(self, task_id: TaskId, after_seq: int = 0) -> tuple[PartialChunk, ...]:
        """The task's partial-result chunks with ``seq > after_seq``, in order."""
        chunks = self._record(task_id).chunks or []
        start = len(chunks)
        while start > 0 and chunks[start - 1].seq > after_seq:
            start -= 1
        return tuple(chunks[start:])

    def predecessor_outputs(
        self,
        task_id: TaskId,
        cap_chars: int = 4000,
        kinds: tuple[DepKind, ...] = ("requires_output",),
    ) -> str:
        """Readable output of the task's predecessors, for the dependent's context.

        Per predecessor reached by an edge of one of ``kinds``: its title, status, and final
        result (with the hand-off) or the partial chunks so far, marked partial with the
        progress counts. Truncated to ``cap_chars`` with a pointer to the full output.

        Returns:
            The text, or ``""`` when there is no such predecessor.
        """
        seen: dict[TaskId, None] = {}
        for dep in self.dependencies(task_id):
            if dep.kind in kinds:
                seen[dep.depends_on] = None
        return format_predecessor_outputs([self.task(p) for p in seen], cap_chars=cap_chars)

    def priority_event(self, change: PriorityChange) -> TaskPriorityChanged:
        """Build the ``TaskPriorityChanged`` event the service appends for ``change``."""
        rec = self._record(change.task_id)
        return TaskPriorityChanged(
            session_id=rec.created.session_id,
            task_id=change.task_id,
            priority=rec.priority,
            effective_priority=change.new,
            reason=change.reason,
        )

    def _record(self, task_id: TaskId) -> _Record:
        try:
            return self._records[task_id]
        except KeyError:
            raise NotFound(f"no task {task_id!r} on the board") from None

    def _build_view(self, rec: _Record) -> TaskView:
        created = rec.created
        inherited = self._graph.inherited_from(created.task_id)
        return TaskView(
            task_id=created.task_id,
            session_id=created.session_id,
            team_id=rec.team_id,
            title=created.title,
            description=created.description,
            status=rec.status,
            owner=rec.owner,
            priority=rec.priority,
            effective_priority=self._graph.effective(created.task_id),
            inherited_from=None if inherited is None else inherited[0],
            result=rec.result,
            note=rec.note,
            partial_chunks=tuple(rec.chunks or ()),
            completed_items=rec.completed_items,
            total_items=rec.total_items,
            milestones=rec.milestones,
            handoff=rec.handoff,
            role=created.role,
            work_s=created.work_s,
            created_by=created.created_by,
            created_order=rec.order,
        )

    # ---- checks (call before appending; they never mutate) ------------------------------

    def check_create(self, task_id: TaskId, title: str, priority: int) -> None:
        """Check a ``TaskCreated``.

        Raises:
            UserError: the id is taken, the title is empty or the priority is not 1–5.
        """
        if task_id in self._records:
            raise UserError(f"task {task_id!r} already exists")
        if not title.strip():
            raise UserError(f"task {task_id!r} needs a non-empty title")
        check_priority_value(task_id, priority)

    def check_status(self, task_id: TaskId, new_status: TaskStatus) -> None:
        """Check a ``TaskStatusChanged``: the transition table, plus readiness to start.

        Raises:
            NotFound: no such task.
            InvalidTransition: the table refuses it, or the task would start while a blocking
                dependency is unmet (the message lists them).
        """
        view = self.task(task_id)
        check_transition(view, new_status)
        if view.status == "assigned" and new_status == "in_progress":
            unmet = self._graph.unmet(task_id)
            if unmet:
                waits = "; ".join(dep.describe() for dep in unmet)
                raise InvalidTransition(
                    f"task {task_id!r} cannot start: it still waits for {waits}"
                )

    def check_assign(self, task_id: TaskId, agent_id: AgentId) -> bool:
        """Check a ``TaskAssigned``; returns ``False`` when the agent already owns it.

        Raises:
            NotFound: no such task.
            InvalidTransition: the task's status cannot go to ``assigned``.
        """
        view = self.task(task_id)
        if view.owner is not None and view.owner.agent_id == agent_id:
            return False
        if view.status != "assigned":
            check_table(view, "assigned")
        return True

    def check_claim(
        self, task_id: TaskId, agent_id: AgentId, expected_owner: AgentId | None
    ) -> None:
        """Check a ``TaskClaimed`` (work stealing): only a queued, ready task can be claimed.

        Raises:
            NotFound: no such task.
            InvalidTransition: the task is not pending/assigned, not ready, or its owner is
                no longer ``expected_owner`` (someone else moved first).
        """
        view = self.task(task_id)
        owner = None if view.owner is None else view.owner.agent_id
        if view.status not in ("pending", "assigned"):
            raise InvalidTransition(
                f"task {task_id!r} is {view.status!r}: only a pending or assigned task not yet "
                "started can be claimed"
            )
        if owner != expected_owner:
            raise InvalidTransition(
                f"task {task_id!r} is now owned by {owner!r}, not {expected_owner!r}: "
                "the claim lost a race"
            )
        if owner == agent_id:
            raise InvalidTransition(f"task {task_id!r} is already owned by {agent_id!r}")
        if not self._graph.is_ready(task_id):
            raise InvalidTransition(f"task {task_id!r} is not ready, so there is nothing to claim")

    def check_move(self, task_id: TaskId, to_team: TeamId) -> None:
        """Check a ``CapacityMoved``: only an unowned, pending task moves, to another team.

        Raises:
            NotFound: no such task.
            InvalidTransition: the task has an owner or is not pending, or is there already.
        """
        view = self.task(task_id)
        if view.owner is not None or view.status != "pending":
            raise InvalidTransition(
                f"task {task_id!r} is {view.status!r}"
                + (f" and owned by {view.owner.name}" if view.owner else "")
                + ": only an unowned pending task can move to another team"
            )
        if view.team_id == to_team:
            raise InvalidTransition(f"task {task_id!r} is on that team's board already")

    def check_dependency(
        self,
        task_id: TaskId,
        depends_on: TaskId,
        kind: DepKind = "blocks",
        milestone: str | None = None,
    ) -> bool:
        """Check a ``DependencyAdded``; returns ``False`` for a duplicate (a no-op).

        Raises:
            NotFound: either task does not exist.
            UserError: unknown kind or empty milestone name.
            TaskCycleError: a self-dependency, or a blocking edge closing a cycle (named).
        """
        self._record(task_id)
        self._record(depends_on)
        if kind not in _DEP_KINDS:
            raise UserError(f"unknown dependency kind {kind!r}; use one of {list(_DEP_KINDS)}")
        if milestone is not None and not milestone.strip():
            raise UserError("a milestone name must not be empty")
        if task_id == depends_on:
            raise TaskCycleError(f"task {task_id!r} cannot depend on itself")
        dep = Dependency(task_id=task_id, depends_on=depends_on, kind=kind, milestone=milestone)
        if self._graph.has_edge(dep):
            return False
        if dep.blocking:
            cycle = self._graph.find_cycle(task_id, depends_on)
            if cycle is not None:
                raise TaskCycleError(
                    f"task {task_id!r} cannot wait for {depends_on!r}: that closes the cycle "
                    f"{' → '.join(cycle)} (each task waits for the next)"
                )
        return True

    def check_milestone(self, task_id: TaskId, name: str, by_agent: AgentId) -> bool:
        """Check a ``MilestoneEmitted``; returns ``False`` when already emitted (a no-op).

        Raises:
            NotFound: no such task.
            UserError: empty name.
            PolicyRefused: ``by_agent`` does not own the task.
        """
        view = self.task(task_id)
        if not name.strip():
            raise UserError("a milestone name must not be empty")
        if view.owner is None or view.owner.agent_id != by_agent:
            owner = "nobody" if view.owner is None else repr(view.owner.agent_id)
            raise PolicyRefused(
                f"only the owner of task {task_id!r} may emit its milestones; it is owned by "
                f"{owner}, not {by_agent!r}"
            )
        return name not in view.milestones

    def check_partial(
        self,
        task_id: TaskId,
        seq: int,
        *,
        by: AgentId | None = None,
        completed_items: int | None = None,
        total_items: int | None = None,
    ) -> None:
        """Check a ``PartialResultPublished``.

        Raises:
            NotFound: no such task.
            PolicyRefused: ``by`` is not the owner.
            InvalidTransition: the task is not running, or ``seq`` does not increase.
            UserError: negative or inconsistent progress counts.
        """
        view = self.task(task_id)
        if by is not None and (view.owner is None or view.owner.agent_id != by):
            raise PolicyRefused(f"only the owner of task {task_id!r} may publish its output")
        if view.status not in CHUNK_STATUSES:
            raise InvalidTransition(
                f"task {task_id!r} is {view.status!r}; partial results are published while "
                f"it is one of {sorted(CHUNK_STATUSES)}"
            )
        last = view.partial_chunks[-1].seq if view.partial_chunks else 0
        if seq <= last:
            raise InvalidTransition(
                f"task {task_id!r}: chunk seq {seq} must be greater than the last one ({last})"
            )
        check_progress(task_id, completed_items, total_items)

    def check_priority(self, task_id: TaskId, priority: int) -> bool:
        """Check a base priority change; returns ``False`` when it changes nothing.

        Raises:
            NotFound: no such task.
            UserError: the priority is not 1–5.
        """
        check_priority_value(task_id, priority)
        return self.task(task_id).priority != priority
