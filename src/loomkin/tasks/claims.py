"""Work stealing's claim and capacity moves: two task commands, mixed into the task service.

Both follow the service's rule (check, append, apply, under its one lock): a claim is a
compare-and-set on the board, a move changes which team's board holds a task. They live here
to keep the service's module small; :class:`~loomkin.tasks.TaskService` is the only user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loomkin.core.events import CapacityMoved, TaskClaimed

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

    from loomkin.core.events import Event, MessageSent
    from loomkin.core.messages import MessageType
    from loomkin.core.tasks import TaskBoard
    from loomkin.core.taskview import TaskView
    from loomkin.ids import AgentId, TaskId, TeamId
    from loomkin.tasks.notices import TaskNotices

__all__ = ["ClaimCommands", "Claimer"]


class Claimer(Protocol):
    """The agent a claim is for (the task layer knows agents only by id and name)."""

    @property
    def agent_id(self) -> AgentId: ...
    @property
    def name(self) -> str: ...
    @property
    def team_id(self) -> TeamId: ...


class _Service(Protocol):
    """What the commands use of the task service."""

    board: TaskBoard
    notices: TaskNotices
    _lock: asyncio.Lock

    def task(self, task_id: str) -> TaskView: ...
    async def _append(self, *events: Event) -> None: ...
    def _message(
        self,
        view: TaskView,
        *,
        msg_type: MessageType,
        to_agent: AgentId,
        content: str,
        data: dict[str, str | int],
    ) -> MessageSent: ...


class ClaimCommands:
    """``claim`` and ``move`` (see the module docstring)."""

    async def claim(
        self: _Service,
        task_id: TaskId,
        worker: Claimer,
        *,
        expected_owner: AgentId | None,
        reason: str,
        also: Sequence[Event] = (),
    ) -> None:
        """Work stealing: take a ready, not yet started task, if its owner is still the one seen.

        A compare-and-set on the board under the service's lock: the claim checks that the
        task is still ``pending``/``assigned`` with owner ``expected_owner`` and appends
        ``TaskClaimed`` with the claimer's ``task_assigned`` message in one batch. Of two
        claimers one wins; the other gets ``InvalidTransition`` at once. A started task is
        never claimed, and the old owner, reading its own (older) assignment later, finds the
        task is no longer its own (``start_for`` returns ``None``).
        """
        async with self._lock:
            view = self.task(task_id)
            self.board.check_claim(task_id, worker.agent_id, expected_owner)
            claimed = TaskClaimed(
                session_id=view.session_id,
                task_id=task_id,
                owner=worker.agent_id,
                owner_name=worker.name,
                previous_owner=expected_owner,
                reason=reason,
            )
            notice = self._message(
                view,
                msg_type="task_assigned",
                to_agent=worker.agent_id,
                content=self.notices.assigned(view, reason),
                data={"task_id": view.task_id},
            )
            await self._append(*also, claimed, notice)

    async def move(self: _Service, task_id: TaskId, to_team: TeamId, *, reason: str) -> None:
        """Move an unowned pending task to another team's board (capacity rebalancing)."""
        async with self._lock:
            view = self.task(task_id)
            self.board.check_move(task_id, to_team)
            await self._append(
                CapacityMoved(
                    session_id=view.session_id,
                    task_id=task_id,
                    from_team=view.team_id,
                    to_team=to_team,
                    reason=reason,
                )
            )
