"""The idle-capacity policy: which waiting task an idle agent should start speculatively.

Run by the scheduler after each planning round (``[speculation] auto = true``):

* **Ready work first.** The policy runs right after the scheduler planned, so idle agents
  left idle suit no ready task. If ready work waits and no agent is idle, the newest
  speculation still working (and not yet confirmed) whose role the work needs is preempted
  (discarded, its agent freed): non-speculative work always comes first. A speculation
  whose every check passed is real work and is never preempted.
* **Candidates** are pending, unowned tasks whose every unmet blocker is being worked on
  (a speculative blocker counts: a chain), except tasks whose guess already failed; an idle
  agent of the task's team (its role when it names one) takes the candidate of highest
  expected value the decision accepts. The value is the critical-path time the bet saves
  (:mod:`~loomkin.coordination.speculation.forecast`): a task with slack is refused, so
  chains only grow along the critical path.
* **Probes.** When no candidate is worth a bet and fewer guesses have held than open the
  whole budget (``ramp_holds``), the cheapest candidate with slack may be taken to learn
  the hit rate, one at a time: it costs an agent that would idle anyway, and a failure
  delays nothing (the task is re-queued at its check, when it would have started).
* **Ramp.** While little is known, few speculations run at once: at most ``2 + 2 × held``
  unconfirmed ones, capped by ``max_active``; the budget ramps too (see
  :func:`loomkin.core.speculation.budget_ramp`), and below the ``min_p`` floor nothing starts.
* **Stake limit.** A bet whose whole stake does not fit what may be lost outright
  (:func:`loomkin.core.speculation.stake_room_s`) waits: the service is asked to plan
  again when, its check nearer, the stake fits.
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
    from loomkin.coordination.speculation.forecast import Forecast
    from loomkin.coordination.speculation.state import SpeculationState
    from loomkin.coordination.speculation.verify import AssumptionSpec
    from loomkin.core.events import SpeculationStarted
    from loomkin.core.speculation import Decision, SpeculationPolicy
    from loomkin.core.taskview import TaskView
    from loomkin.ids import TaskId

__all__ = ["IdlePolicy", "SpeculationHost"]

_WORKED_ON = ACTIVE_STATUSES | {"pending_speculative", "completed_tentative"}
"""A blocker in one of these is being worked on (so its output is on its way)."""


class SpeculationHost(Protocol):
    """What the policy uses of the speculation service."""

    @property
    def ctx(self) -> Context: ...
    @property
    def policy(self) -> SpeculationPolicy: ...
    @property
    def state(self) -> SpeculationState: ...

    def forecast(self, *, start_now: TaskId | None = None) -> Forecast: ...
    def stake_room_s(self, base: Forecast) -> float: ...
    def wake_at(self, at: float) -> None: ...
    def decision_for(
        self,
        task_id: TaskId,
        kind: str,
        role: str,
        *,
        base: Forecast | None = None,
        probe: bool = False,
    ) -> Decision: ...
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
        probe: bool = False,
    ) -> SpeculationStarted: ...
    async def discard(self, task_id: TaskId, reason: str, detail: str) -> None: ...


class IdlePolicy:
    """Speculation on idle capacity for one session (see the module docs)."""

    def __init__(self, speculation: SpeculationHost) -> None:
        self.speculation = speculation
        self._declined: dict[str, tuple[int, int]] = {}
        self._declined_now: list[tuple[TaskId, Member, Decision, tuple[str, str]]] = []

    def _room(self) -> int:
        spec = self.speculation
        held = spec.state.counts["held"]
        cap = min(spec.policy.max_active, 2 + 2 * held)
        # A speculation whose every check passed is real work now: it risks nothing more.
        return cap - sum(1 for s in spec.state.active.values() if not s.all_held())

    def _candidates(self) -> list[TaskView]:
        spec = self.speculation
        board = spec.ctx.tasks.board
        found = []
        for view in board.tasks():
            if view.session_id != spec.ctx.session_id or view.status != "pending":
                continue
            if view.owner is not None or view.task_id in spec.state.active:
                continue
            if view.task_id in spec.state.guessed_wrong:
                continue  # the same guess about the same task would likely fail again
            waits = board.waiting_on(view.task_id)
            if waits and all(board.task(d.depends_on).status in _WORKED_ON for d in waits):
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
        if ready and not idle:
            await self._preempt(ready)
            return
        # The scheduler has just planned: a ready task still unowned found no idle agent it
        # suits, so the idle agents left are free to speculate.
        free = list(idle)
        while free and self._room() > 0:
            best = self._best(free)
            if best is None:
                break
            member, view, probe = best
            try:
                await spec.speculate(member, view.task_id, [], started_by="scheduler", probe=probe)
            except LoomkinError:
                break  # the board moved on since the plan (the refusal says why)
            free.remove(member)
        await self._record_declines()

    def _best(self, free: list[Member]) -> tuple[Member, TaskView, bool] | None:
        """The candidate worth most (expected value), with the idle agent to take it.

        When none is worth it and the hit rate is still being learnt, the cheapest candidate
        with slack may be taken as a probe (the third item says so; see :meth:`_may_probe`).
        """
        spec = self.speculation
        board = spec.ctx.tasks.board
        best: tuple[float, Member, TaskView] | None = None
        slack: list[tuple[float, Member, TaskView, str, str]] = []
        base = spec.forecast()
        for view in self._candidates():
            member = _pick(free, view)
            if member is None:
                continue
            waits = board.waiting_on(view.task_id)
            kind = waits[0].kind if waits[0].milestone is None else f"{waits[0].kind}@milestone"
            role = view.role or member.role
            decision = spec.decision_for(view.task_id, kind, role, base=base)
            if decision.too_big:
                self._wake_when_it_fits(view.task_id, base)
            if not decision.speculate:
                if decision.saving_if_held_s <= 0:
                    slack.append((decision.at_stake_s, member, view, kind, role))
                self._declined_now.append((view.task_id, member, decision, (kind, role)))
            elif best is None or decision.value_usd > best[0]:
                best = (decision.value_usd, member, view)
        if best is not None:
            return best[1], best[2], False
        if not slack or not self._may_probe():
            return None
        _stake, member, view, kind, role = min(slack, key=lambda c: (c[0], c[2].created_order))
        probe = spec.decision_for(view.task_id, kind, role, base=base, probe=True)
        if not probe.speculate:
            return None
        self._declined_now = [d for d in self._declined_now if d[0] != view.task_id]
        return member, view, True

    def _wake_when_it_fits(self, task_id: TaskId, base: Forecast) -> None:
        """Plan again when a bet refused as too big would fit (the stake limit).

        Its stake is its work up to its check, so it shrinks as the check nears: started
        once it fits, it still saves that part of its wait. No event may come to plan again
        by then (near a session's end, few do), so the service sets a timer.
        """
        spec = self.speculation
        room = spec.stake_room_s(base)
        at = base.ready_at.get(task_id, base.now) - room
        if room > 0 and at > base.now:
            spec.wake_at(at)

    def _may_probe(self) -> bool:
        """Probe only while learning: fewer holds than open the whole budget, none running.

        Waiting for a critical task's turn with no evidence, the policy could only refuse
        big bets (the budget ramp): a cheap bet on a task with slack, on an agent that
        would idle anyway, tells it whether guesses hold. One probe at a time; the floor
        stops probing at a low hit rate as it stops any bet.
        """
        spec = self.speculation
        if spec.state.rates.held() >= spec.policy.ramp_holds:
            return False
        return all(s.all_held() for s in spec.state.active.values())

    async def _record_declines(self) -> None:
        """Record each refusal once per task and state of knowledge (not every round)."""
        spec = self.speculation
        declined, self._declined_now = self._declined_now, []
        for task_id, member, decision, (kind, role) in declined:
            known = spec.state.rates.counts(kind, role)
            if self._declined.get(task_id) != known:
                self._declined[task_id] = known
                await spec.record_decision(task_id, member, decision)

    async def _preempt(self, ready: Sequence[TaskView]) -> None:
        spec = self.speculation
        roles = {v.role for v in ready}
        working = [
            s
            for s in spec.state.active.values()
            if s.tentative is None
            and not s.all_held()  # confirmed: real work now, never thrown away for other work
            and ("" in roles or s.started.role in roles)
        ]
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
