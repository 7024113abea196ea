"""The speculation service (SPEC §3.7): start ahead of a blocker, check, merge or discard.

How this works and why:

* **Start.** ``speculate`` checks the task waits on unfinished blockers, prices the bet with
  the expected-value policy (:func:`loomkin.core.speculation.decide`), makes the isolated
  workspace, then appends one batch: the decision, ``SpeculationStarted``, the assumptions,
  and (through the task service) the assignment and the move to ``pending_speculative``. A
  crash between the workspace and the append leaves an orphan that the next start sweeps.
* **Isolation.** While a speculation runs, its agent's file and shell tools are rooted in
  the workspace (:meth:`root_for`), so nothing reaches the shared tree before a merge.
* **Validation** runs when a blocker completes (or emits the milestone the edge waits for):
  structured assumptions are compared exactly with the real payload, prose ones go to the
  judge (a model call) whose verdict and reasoning are recorded. When every blocker held and
  the agent finished, the workspace is merged and the task completes in the same batch as
  ``SpeculationMerged``; a merge conflict is a failed validation. Any failure discards the
  workspace and re-queues the task, recording the waste (tokens, cost, time, model calls).
* **Resume.** After a replay, a speculation whose workspace survived is re-attached (and
  whatever validation or merge was due runs); one whose workspace is gone is discarded;
  workspaces no speculation owns are removed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from loomkin.coordination.speculation.forecast import (
    DEFAULT_WORK_S,
    Forecast,
    Timeline,
    forecast,
)
from loomkin.coordination.speculation.idle import IdlePolicy
from loomkin.coordination.speculation.settle import Settler
from loomkin.coordination.speculation.state import Active, SpeculationState
from loomkin.coordination.speculation.verify import AssumptionSpec, Judge
from loomkin.coordination.speculation.workspace import WorkspaceError, Workspaces
from loomkin.core.events import (
    AssumptionAdded,
    MilestoneEmitted,
    PartialResultPublished,
    SpeculationDecided,
    SpeculationStarted,
    SpeculativeMilestoneHeld,
    TaskStatusChanged,
)
from loomkin.core.speculation import (
    Decision,
    SpeculationCosts,
    SpeculationPolicy,
    budget_ramp,
    decide,
)
from loomkin.core.speculation import stake_room_s as _stake_room_s
from loomkin.errors import NotFound, UserError
from loomkin.ids import TaskId, new_id
from loomkin.tasks.service import WorkerRef

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

    from loomkin.coordination.base import Context, Member
    from loomkin.core.events import RecordedEvent
    from loomkin.ids import AgentId

__all__ = ["AssumptionSpec", "Judge", "Speculation"]

logger = logging.getLogger(__name__)
_DEFAULT_WORK_S = DEFAULT_WORK_S
_GONE = frozenset({"done", "crashed"})


class Speculation:
    """Speculative tasks of one session (a projection plus commands; see the module docs)."""

    def __init__(
        self,
        ctx: Context,
        project_root: Path,
        policy: SpeculationPolicy | None = None,
        *,
        judge: Judge | None = None,
    ) -> None:
        self.ctx = ctx
        self.policy = policy or SpeculationPolicy()
        self.judge = judge
        self.workspaces = Workspaces(project_root)
        self.state = SpeculationState(alpha=self.policy.prior_alpha, beta=self.policy.prior_beta)
        self.timeline = Timeline()
        """When tasks started and where milestones fall (what the forecast reads)."""
        self.budget_usd: float | None = None
        """The session's cost budget, when it has one (the speculation budget is a share)."""
        self._lock = asyncio.Lock()
        self.settler = Settler(ctx, self.state, self.workspaces, judge, self._lock)
        self.check_blocker = self.settler.check_blocker
        self.finish = self.settler.finish
        self.discard = self.settler.discard
        self.idle = IdlePolicy(self)
        self._busy = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self.wake: Callable[[], None] | None = None
        """Asks for a planning round (the scheduler's kick), set by the runtime."""
        self._wake_at: float | None = None

    def use_workspaces(self, workspaces: Workspaces) -> None:
        """Replace where workspaces are made (a benchmark's virtual ones, say)."""
        self.workspaces = workspaces
        self.settler.workspaces = workspaces

    # -- queries ----------------------------------------------------------------------------------

    def root_for(self, task_id: str | None) -> Path | None:
        """The workspace a task's tools work in while it is speculative, else ``None``."""
        spec = None if task_id is None else self.state.active.get(TaskId(task_id))
        return None if spec is None else spec.workspace.path

    def assumption_lines(self, task_id: str) -> list[str]:
        """The running speculation's assumptions as readable lines (names, not ids)."""
        spec = self.state.active.get(TaskId(task_id))
        if spec is None:
            return []
        board = self.ctx.tasks.board
        lines = []
        for a in spec.assumptions:
            on = board.task(a.on_task).title
            what = f"{a.key} = {a.value!r}" if a.key else a.text
            lines.append(f"{on!r} delivers: {what}")
        return lines

    def holds_back(self, task_id: str) -> bool:
        """True while the task is speculative and its assumptions are not all confirmed."""
        spec = self.state.active.get(TaskId(task_id))
        return spec is not None and not spec.all_held()

    async def hold_milestone(self, task_id: str, name: str, *, by: AgentId, note: str) -> bool:
        """Record a milestone of unconfirmed speculative work (released when confirmed).

        Returns ``False`` when it was already recorded.
        """
        spec = self.state.active.get(TaskId(task_id))
        if spec is None:
            raise NotFound(f"task {task_id!r} has no running speculation")
        if not name.strip():
            raise UserError("a milestone name must not be empty")
        if spec.started.agent_id != by:
            raise UserError(f"only {spec.started.agent_name} may emit this task's milestones")
        if any(m.name == name for m in spec.milestones):
            return False
        await self.ctx.log.append(
            SpeculativeMilestoneHeld(
                session_id=spec.started.session_id,
                task_id=spec.started.task_id,
                name=name,
                note=note,
                by=by,
            )
        )
        return True

    def hit_rate(self, dep_kind: str, role: str) -> float:
        """The posterior mean probability that a speculation of this kind and role holds."""
        return self.state.rates.mean(dep_kind, role)

    def budget_left_usd(self) -> float:
        """What speculation may still waste: a share of the session budget, or of its work.

        Only part of the share is open until guesses have held (:func:`budget_ramp`).
        Waste is counted as the larger of its model spend and its work time priced at
        ``usd_per_work_hour`` (scripted or local models cost nothing, yet waste time).
        Without a session budget, the cap is a share of the known work on the board.
        """
        policy = self.policy
        rate = policy.usd_per_work_hour / 3600.0
        ramp = budget_ramp(policy, self.state.rates.held())
        if self.budget_usd is not None:
            cap = policy.budget_share * self.budget_usd
        else:
            cap = policy.budget_share * self._session_work_s() * rate
        cap *= ramp
        spent = max(self.state.wasted_usd, self.state.wasted_s * rate)
        return max(0.0, cap - spent - self._at_risk_usd())

    # -- projection -------------------------------------------------------------------------------

    def on_event(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold one event in; when live, start the validation or merge it makes due."""
        event = recorded.event
        self.state.apply(event, recorded.recorded_at)
        self.timeline.apply(event, recorded.recorded_at, self._work_of)
        if not live:
            return
        match event:
            case TaskStatusChanged(status="completed", task_id=tid) if self._blocking(tid):
                self._spawn(f"validate:{tid}", lambda: self.check_blocker(tid))
            case TaskStatusChanged(status="failed" | "cancelled", task_id=tid) if self._blocking(
                tid
            ):
                self._spawn(f"validate:{tid}", lambda: self.check_blocker(tid))
            case MilestoneEmitted(task_id=tid) if self._blocking(tid):
                self._spawn(f"milestone:{tid}", lambda: self.check_blocker(tid))
            case PartialResultPublished(task_id=tid) if self._blocking(tid):
                self._spawn(f"output:{tid}", lambda: self.check_blocker(tid))
            case TaskStatusChanged(status="completed_tentative", task_id=tid):
                self._spawn(f"finish:{tid}", lambda: self.finish(tid))
            case TaskStatusChanged(
                status="discarded_tentative" | "failed" | "cancelled", task_id=tid
            ) if tid in self.state.active:
                self._spawn(f"drop:{tid}", lambda: self.settler.dropped_elsewhere(tid))
            case _:
                pass

    async def caught_up(self) -> None:
        """Re-attach or discard what a crash left, then run whatever became due meanwhile."""
        keep = set()
        for task_id, spec in list(self.state.active.items()):
            if not self.workspaces.exists(spec.workspace.path):
                await self.discard(task_id, "crashed", "its workspace was lost in a restart")
                continue
            keep.add(spec.workspace.path.name)
        await self.workspaces.sweep(keep)
        for task_id, spec in list(self.state.active.items()):
            view = self.ctx.tasks.board.get(task_id)
            if view is None or view.status not in ("pending_speculative", "completed_tentative"):
                await self.discard(task_id, "crashed", "the task moved on during a restart")
                continue
            for blocker in spec.started.blockers:
                await self.check_blocker(blocker)
            if task_id in self.state.active:
                await self.finish(task_id)

    def _blocking(self, task_id: TaskId) -> bool:
        return any(task_id in s.started.blockers for s in self.state.active.values())

    def _spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self._busy += 1
        self._settled.clear()

        async def tracked() -> None:
            try:
                await work()
            finally:
                self._busy -= 1
                if not self._busy:
                    self._settled.set()

        self.ctx.timers.run(f"speculation:{name}:{new_id('s_')}", tracked)

    def settled(self) -> bool:
        """True when no validation, merge or discard is under way."""
        return self._settled.is_set()

    async def wait_settled(self) -> None:
        """Wait until every validation, merge or discard started so far is done."""
        await self._settled.wait()

    # -- commands ---------------------------------------------------------------------------------

    async def speculate(
        self,
        member: Member,
        task_id: str,
        assumptions: Sequence[AssumptionSpec],
        *,
        started_by: str = "agent",
        probe: bool = False,
    ) -> SpeculationStarted:
        """Start ``task_id`` for ``member`` ahead of its blockers (see the module docs).

        ``probe``: the idle policy's bet to learn the hit rate (priced as one).

        Raises:
            UserError: the task is ready or not pending, an assumption names a task that is
                not a blocker, the policy says no (the decision is recorded), or no room.
        """
        tid = TaskId(task_id)
        board = self.ctx.tasks.board
        view = board.task(tid)
        for a in assumptions:
            a.check()
        waits = board.waiting_on(tid)
        if not waits:
            raise UserError(f"task {view.title!r} is not waiting on anything: start it normally")
        blockers = tuple(dict.fromkeys(d.depends_on for d in waits))
        for a in assumptions:
            if a.on_task is not None and a.on_task not in blockers:
                names = ", ".join(board.task(b).title for b in blockers)
                raise UserError(
                    f"an assumption names a task that is not a blocker (blockers: {names})"
                )
        if self.state.by_agent(member.agent_id) is not None:
            raise UserError(f"{member.name} is already speculating")
        if len(self.state.active) >= self.policy.max_active:
            raise UserError(f"{self.policy.max_active} speculations already run; wait for one")
        kind = waits[0].kind if waits[0].milestone is None else f"{waits[0].kind}@milestone"
        role = view.role or member.role
        decision = self.decision_for(tid, kind, role, probe=probe)
        if not decision.speculate and started_by != "scheduler" and self._may_insist(decision):
            # An agent or a user asked explicitly: the estimates advise, the hard limits
            # (disabled, hit rate below the floor, budget already spent) decide.
            why = f"requested by {started_by}; the policy alone would not: {decision.reason}"
            decision = replace(decision, speculate=True, reason=why)
        decided = self._decided(tid, member, decision)
        if not decision.speculate:
            await self.ctx.log.append(decided)
            raise UserError(f"speculation on {view.title!r} declined: {decision.reason}")
        async with self._lock:
            # A blocker may have finished while this waited for the lock (a merge holds it):
            # the speculation runs ahead of the blockers still unmet now, or of none.
            blockers = tuple(dict.fromkeys(d.depends_on for d in board.waiting_on(tid)))
            if not blockers:
                await self.ctx.log.append(decided)
                raise UserError(f"task {view.title!r} became ready: start it normally")
            name = str(tid)
            try:
                ws = await self.workspaces.create(name)
            except WorkspaceError as exc:
                raise UserError(f"cannot make a workspace for {view.title!r}: {exc}") from exc
            started = SpeculationStarted(
                session_id=view.session_id,
                task_id=tid,
                agent_id=member.agent_id,
                agent_name=member.name,
                blockers=blockers,
                workspace=str(ws.path),
                workspace_kind=ws.kind,
                branch=ws.branch,
                base=ws.base,
                dep_kind=kind,
                role=role,
                started_by=started_by,
            )
            added = [self._assumption(started, a, member) for a in assumptions]
            worker = WorkerRef(agent_id=member.agent_id, name=member.name, team_id=member.team_id)
            try:
                await self.ctx.tasks.start_speculative(
                    tid, worker, reason=decision.reason, also=[decided, started, *added]
                )
            except Exception:
                await self.workspaces.remove(ws.path, ws.branch)
                raise
        await self._check_met(tid, blockers)
        return started

    async def _check_met(self, task_id: TaskId, blockers: Sequence[TaskId]) -> None:
        """Validate the blockers whose edge was met between the plan and the append.

        Such an edge had no speculation to validate when it was met: without this the
        speculation would wait for it forever (never checked, its task never finished).
        """
        board = self.ctx.tasks.board
        for blocker in blockers:
            if all(d.depends_on != blocker for d in board.waiting_on(task_id)):
                await self.check_blocker(blocker)

    def _decided(self, task_id: TaskId, member: Member, decision: Decision) -> SpeculationDecided:
        return SpeculationDecided(
            session_id=self.ctx.session_id,
            task_id=task_id,
            agent_id=member.agent_id,
            speculate=decision.speculate,
            p_hold=decision.p_hold,
            expected_saving_s=decision.expected_saving_s,
            expected_waste_usd=decision.expected_waste_usd,
            value_usd=decision.value_usd,
            reason=decision.reason,
            saving_if_held_s=decision.saving_if_held_s,
            at_stake_s=decision.at_stake_s,
            budget_left_usd=decision.budget_left_usd,
        )

    async def record_decision(self, task_id: TaskId, member: Member, decision: Decision) -> None:
        """Record a decision that started nothing (the idle policy's refusals)."""
        await self.ctx.log.append(self._decided(task_id, member, decision))

    async def offer_idle(self, idle: Sequence[Member]) -> None:
        """Let the idle-capacity policy start or preempt speculations (scheduler hook)."""
        await self.idle.offer(idle)

    def forecast(self, *, start_now: TaskId | None = None) -> Forecast:
        """The session's projected finish from now (``start_now``: as if that task started)."""
        board = self.ctx.tasks.board
        mine = [v for v in board.tasks() if v.session_id == self.ctx.session_id]
        workers = sum(1 for m in self.ctx.roster.members() if m.status not in _GONE)
        return forecast(
            board, mine, self.timeline, self.ctx.clock.now(), workers=workers, start_now=start_now
        )

    def decision_for(
        self,
        task_id: TaskId,
        kind: str,
        role: str,
        *,
        base: Forecast | None = None,
        probe: bool = False,
    ) -> Decision:
        """The expected-value decision for speculating on ``task_id`` now (not recorded).

        The saving is the critical-path time starting the task now gains over waiting for
        its blockers (the session's forecast finish, without and with it started now), times
        the odds that the speculations it would build on hold; the work at stake is the
        task's work up to its check (when its blockers' edges are forecast to be met).
        ``base`` is the forecast without it, when the caller has one; ``probe`` prices it
        as a probe (a bet to learn the hit rate, see :func:`decide`).
        """
        board = self.ctx.tasks.board
        view = board.task(task_id)
        base = base if base is not None else self.forecast()
        ahead = self.forecast(start_now=task_id)
        saving = max(0.0, base.makespan - ahead.makespan) * self._chain_odds(task_id)
        check = base.ready_at.get(task_id, base.now)
        work = view.work_s or _DEFAULT_WORK_S
        costs = SpeculationCosts(
            saving_s=saving,
            work_s=min(work, max(0.0, check - base.now)),
            budget_left_usd=self.budget_left_usd(),
            probe=probe,
            stake_room_s=self.stake_room_s(base),
        )
        rates = self.state.rates
        return decide(
            self.policy,
            rates.mean(kind, role),
            costs,
            p_high=rates.hopeful(kind, role),
        )

    def stake_room_s(self, base: Forecast) -> float:
        """What may still be lost outright (:func:`~loomkin.core.speculation.stake_room_s`), now.

        A running bet not yet confirmed stakes the work it does until its check: until
        it finished tentatively, or until its check as forecast now (never less than the
        work it already did, never more than its task's work).
        """
        exposed = 0.0
        for spec in self.state.active.values():
            if spec.all_held():
                continue
            tid = spec.started.task_id
            end = spec.tentative_at
            if end is None:
                end = max(base.now, base.ready_at.get(tid, base.now))
                end = min(end, spec.started_at + self._work_of(tid))
            exposed += max(0.0, end - spec.started_at)
        return _stake_room_s(
            self.policy,
            self.state.rates,
            work_s=self._session_work_s(),
            held_s=self.state.held_s,
            wasted_s=self.state.wasted_s,
            exposed_s=exposed,
        )

    def _session_work_s(self) -> float:
        board = self.ctx.tasks.board
        return sum(
            v.work_s or _DEFAULT_WORK_S
            for v in board.tasks()
            if v.session_id == self.ctx.session_id
        )

    def wake_at(self, at: float) -> None:
        """Plan again at ``at`` (session time), when a refused bet would fit by then.

        Rounds follow events; near the end of a session none may come while the stake of
        a waiting bet shrinks to what may be lost outright. One timer, the earliest asked.
        """
        if self.wake is None or (self._wake_at is not None and self._wake_at <= at):
            return
        self._wake_at = at
        wake = self.wake

        async def sleep_then_plan() -> None:
            await asyncio.sleep(max(0.0, at - self.ctx.clock.now()))
            if self._wake_at == at:
                self._wake_at = None
                wake()

        self.ctx.timers.run(f"speculation:wake:{new_id('w_')}", sleep_then_plan)

    def _chain_odds(self, task_id: TaskId) -> float:
        """The odds that the unconfirmed speculations ``task_id`` waits on hold (1 if none).

        A speculation built on another one (a chain) gains its saving only when that one
        holds too: the forecast assumed it would.
        """
        odds = 1.0
        for dep in self.ctx.tasks.board.waiting_on(task_id):
            below = self.state.active.get(dep.depends_on)
            if below is not None and not below.all_held():
                odds *= self.state.rates.mean(below.started.dep_kind, below.started.role)
        return odds

    def _work_of(self, task_id: TaskId) -> float:
        view = self.ctx.tasks.board.get(task_id)
        return 0.0 if view is None else (view.work_s or _DEFAULT_WORK_S)

    def _may_insist(self, decision: Decision) -> bool:
        policy = self.policy
        if not policy.enabled or decision.p_hold < policy.min_p:
            return False
        return self.budget_left_usd() + self._at_risk_usd() > 0.0

    def _at_risk_usd(self) -> float:
        """Expected waste of the speculations still running (committed, not yet known)."""
        rate = self.policy.usd_per_work_hour / 3600.0
        board = self.ctx.tasks.board
        risk = 0.0
        for spec in self.state.active.values():
            if spec.held >= set(spec.started.blockers):
                continue
            p = self.state.rates.mean(spec.started.dep_kind, spec.started.role)
            work = board.task(spec.started.task_id).work_s or _DEFAULT_WORK_S
            risk += (1.0 - p) * work * rate
        return risk

    def _assumption(
        self, started: SpeculationStarted, spec: AssumptionSpec, member: Member
    ) -> AssumptionAdded:
        on = spec.on_task if spec.on_task is not None else started.blockers[0]
        return AssumptionAdded(
            session_id=started.session_id,
            task_id=started.task_id,
            assumption_id=new_id("as_"),
            on_task=on,
            key=spec.key.strip(),
            value=spec.value,
            text=spec.text.strip(),
            by=member.agent_id,
        )

    async def add_assumption(self, member: Member, task_id: str, spec: AssumptionSpec) -> str:
        """Add an assumption to a running speculation (its agent or a lead); its id."""
        spec.check()
        active = self._active(task_id)
        blockers = active.started.blockers
        if spec.on_task is not None and spec.on_task not in blockers:
            raise UserError("that task is not one this speculation runs ahead of")
        on = spec.on_task or blockers[0]
        if on in active.held:
            raise UserError("that blocker's output was already checked; the assumption is moot")
        event = self._assumption(active.started, spec, member)
        await self.ctx.log.append(event)
        return event.assumption_id

    async def cancel(self, task_id: str, by: str) -> None:
        """Discard a running speculation (a lead's call): workspace removed, task re-queued."""
        self._active(task_id)
        await self.discard(TaskId(task_id), "cancelled", f"cancelled by {by}")

    def _active(self, task_id: str) -> Active:
        active = self.state.active.get(TaskId(task_id))
        if active is None:
            raise NotFound(f"task {task_id!r} has no running speculation")
        return active
