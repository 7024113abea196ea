"""Task commands of speculative work (SPEC §3.7), mixed into :class:`TaskService`.

Starting a task speculatively gives it an owner and moves it to ``pending_speculative`` in
one batch with the speculation's own events; settling it completes the tentative work
(merged) or discards it and re-queues it, again in one batch. Both run under the service's
lock like every other command (``loomkin.tasks`` rule 1).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from loomkin.errors import InvalidTransition

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

    from loomkin.core.events import Event, TaskStatusChanged
    from loomkin.core.records import TaskStatus
    from loomkin.core.tasks import TaskBoard
    from loomkin.core.taskview import Handoff, TaskView
    from loomkin.ids import AgentId, TaskId, TeamId

__all__ = ["SpeculativeCommands"]


class Worker(Protocol):
    """The agent a command acts for (the service's ``Worker``, repeated: no import cycle)."""

    @property
    def agent_id(self) -> AgentId: ...
    @property
    def name(self) -> str: ...
    @property
    def team_id(self) -> TeamId: ...


class _Service(Protocol):
    """What the commands use of the task service (as ``ClaimCommands`` declares its own)."""

    board: TaskBoard
    _lock: asyncio.Lock

    def task(self, task_id: str) -> TaskView: ...
    async def _append(self, *events: Event) -> None: ...
    def _assignment(
        self, view: TaskView, worker: Worker, *, by: str, reason: str
    ) -> list[Event]: ...
    def _status_event(
        self, view: TaskView, status: TaskStatus, note: str, by: AgentId | None
    ) -> TaskStatusChanged: ...
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
    ) -> None: ...


class SpeculativeCommands:
    """``start_speculative`` and ``settle_speculative`` (the service provides the rest)."""

    async def start_speculative(
        self: _Service, task_id: TaskId, worker: Worker, *, reason: str, also: Sequence[Event] = ()
    ) -> TaskView:
        """Give a not-yet-ready task to ``worker`` as speculative work (SPEC §3.7), in one batch.

        ``also`` (the speculation's own events: decision, start, assumptions) goes ahead of
        the assignment, its message and the move to ``pending_speculative``.

        Raises:
            InvalidTransition: the task is not pending (or blocked for this worker).
        """
        async with self._lock:
            view = self.task(task_id)
            owner = None if view.owner is None else view.owner.agent_id
            if view.status not in ("pending", "blocked") or owner not in (None, worker.agent_id):
                holder = (
                    "" if owner is None else f", owned by {view.owner.name if view.owner else ''}"
                )
                raise InvalidTransition(
                    f"task {task_id!r} is {view.status!r}{holder}: only a pending task (or a "
                    "blocked one of your own) can be started speculatively"
                )
            given = self._assignment(view, worker, by="speculation", reason=reason)
            moved = self._status_event(
                replace(view, status="assigned"), "pending_speculative", reason, worker.agent_id
            )
            await self._append(*also, *given, moved)
            return self.board.task(task_id)

    async def settle_speculative(
        self: _Service,
        task_id: TaskId,
        *,
        merged: bool,
        note: str,
        handoff: Handoff | None = None,
        also: Sequence[Event] = (),
    ) -> None:
        """Complete a tentative task (``merged``) or discard it and re-queue it, in one batch."""
        async with self._lock:
            view = self.task(task_id)
            if merged:
                await self._set_status(
                    task_id,
                    "completed",
                    by=None,
                    note=note,
                    result=view.result,
                    handoff=handoff,
                    also=also,
                )
                return
            self.board.check_status(task_id, "discarded_tentative")
            dropped = self._status_event(view, "discarded_tentative", note, None)
            requeued = self._status_event(
                replace(view, status="discarded_tentative"), "pending", note, None
            )
            await self._append(*also, dropped, requeued)
