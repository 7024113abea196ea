"""The idle-capacity policy: which waiting task an idle agent should start speculatively.

Run by the scheduler after each planning round (``[speculation] auto = true``):

* **Ready work first.** If any task of the session is ready and unowned, nothing speculates;
  if ready work waits and no agent is idle, the newest speculation still working is
  preempted (discarded, its agent freed) — non-speculative work always comes first.
* **Candidates** are pending, unowned tasks whose every unmet blocker is being worked on,
  best effective priority first; an idle agent of the task's team (its role when it names
  one) takes the first one the expected-value decision accepts.
* **Ramp.** While little is known, few speculations run at once: at most ``1 + held`` (the
  speculations that held so far), capped by ``max_active``; a policy that has only seen
  failures keeps to one at a time, and below ``min_p`` to none.
* **One decision event per change of mind.** A refusal is recorded once per task and state of
  knowledge, not at every planning round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loomkin.core.taskstates import ACTIVE_STATUSES
from loomkin.errors import LoomkinError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.coordination.base import Context, Member
    from loomkin.coordination.speculation.state import SpeculationState
    from loomkin.coordination.speculation.verify import AssumptionSpec
    from loomkin.core.events import SpeculationStarted
    from loomkin.core.speculation import Decision, SpeculationPolicy
    from loomkin.core.taskview import TaskView
    from loomkin.ids import TaskId

__all__ = ["IdlePolicy", "SpeculationHost"]


class SpeculationHost(Protocol):
    """What the policy uses of the speculation service."""

    @property
    def ctx(self) -> Context: ...
    @property
    def policy(self) -> SpeculationPolicy: ...
    @property
    def state(self) -> SpeculationState: ...

    def decision_for(self, task_id: TaskId, kind: str, role: str) -> Decision: ...
    async def record_decision(
        self, task_id: TaskId, member: Member, decision: Decision
    ) -> None: ...
    async def speculate(
        self,
        member: Member,
        task_id: str,
        assumptions: Sequence[AssumptionSpec],
        *,
        started_by: str = "agent",
    ) -> SpeculationStarted: ...
    async def discard(self, task_id: TaskId, reason: str, detail: str) -> None: ...


class IdlePolicy:
    """Speculation on idle capacity for one session (see the module docs)."""

    def __init__(self, speculation: SpeculationHost) -> None:
        self.speculation = speculation
        self._declined: dict[str, tuple[int, int]] = {}

    def _room(self) -> int:
        spec = self.speculation
        held = spec.state.counts["held"]
        cap = min(spec.policy.max_active, 1 + held)
        return cap - len(spec.state.active)

    def _candidates(self) -> list[TaskView]:
        spec = self.speculation
        board = spec.ctx.tasks.board
        found = []
        for view in board.tasks():
            if view.session_id != spec.ctx.session_id or view.status != "pending":
                continue
            if view.owner is not None or view.task_id in spec.state.active:
                continue
            waits = board.waiting_on(view.task_id)
            if waits and all(board.task(d.depends_on).status in ACTIVE_STATUSES for d in waits):
                found.append(view)
        found.sort(key=lambda v: (v.effective_priority, v.created_order))
        return found

    async def offer(self, idle: Sequence[Member]) -> None:
        """Start or preempt speculations given the session's ``idle`` agents."""
        spec = self.speculation
        if not (spec.policy.enabled and spec.policy.auto):
            return
        board = spec.ctx.tasks.board
        ready = [v for v in board.ready_tasks() if v.session_id == spec.ctx.session_id]
        if ready:
            if not idle:
                await self._preempt()
            return
        free = list(idle)
        for view in self._candidates():
            if self._room() <= 0 or not free:
                return
            member = _pick(free, view)
            if member is None:
                continue
            if not await self._try(member, view):
                continue
            free.remove(member)

    async def _try(self, member: Member, view: TaskView) -> bool:
        spec = self.speculation
        board = spec.ctx.tasks.board
        waits = board.waiting_on(view.task_id)
        kind = waits[0].kind if waits[0].milestone is None else f"{waits[0].kind}@milestone"
        role = view.role or member.role
        decision = spec.decision_for(view.task_id, kind, role)
        if not decision.speculate:
            known = spec.state.rates.counts(kind, role)
            if self._declined.get(view.task_id) != known:
                self._declined[view.task_id] = known
                await spec.record_decision(view.task_id, member, decision)
            return False
        try:
            await spec.speculate(member, view.task_id, [], started_by="scheduler")
        except LoomkinError:
            return False  # the board moved on since the plan (the refusal says why)
        return True

    async def _preempt(self) -> None:
        spec = self.speculation
        working = [s for s in spec.state.active.values() if s.tentative is None]
        if not working:
            return
        newest = max(working, key=lambda s: s.started_at)
        await spec.discard(newest.started.task_id, "preempted", "ready work needed the agent")


def _pick(free: list[Member], view: TaskView) -> Member | None:
    same_team = [m for m in free if m.team_id == view.team_id]
    if view.role:
        matching = [m for m in same_team if m.role == view.role]
        if matching:
            return matching[0]
    return same_team[0] if same_team else None
