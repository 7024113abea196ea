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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loomkin.coordination.speculation.state import Active, SpeculationState
from loomkin.coordination.speculation.workspace import WorkspaceError, Workspaces
from loomkin.core.events import (
    AssumptionAdded,
    ConflictDetected,
    MilestoneEmitted,
    SpeculationDecided,
    SpeculationDiscarded,
    SpeculationMerged,
    SpeculationStarted,
    SpeculationValidated,
    TaskStatusChanged,
)
from loomkin.core.events.base import JSON
from loomkin.core.speculation import (
    Decision,
    SpeculationCosts,
    SpeculationPolicy,
    Verdict,
    decide,
    handoff_payload,
    same_value,
)
from loomkin.core.taskview import Handoff
from loomkin.errors import NotFound, UserError
from loomkin.ids import TaskId, new_id
from loomkin.tasks.service import WorkerRef

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

    from loomkin.coordination.base import Context, Member
    from loomkin.core.events import Event, RecordedEvent

__all__ = ["AssumptionSpec", "Judge", "Speculation"]

logger = logging.getLogger(__name__)
_DEFAULT_WORK_S = 600.0
"""Work assumed for a task with no estimate (most tasks an agent creates have none)."""


class Judge(Protocol):
    """Decides whether a prose assumption holds given the predecessor's real output."""

    async def judge(self, assumption: str, output: str) -> tuple[bool, str]:
        """``(holds, reasoning)``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AssumptionSpec:
    """An assumption as a caller states it: ``key`` → ``value``, or prose ``text``."""

    on_task: TaskId | None = None
    key: str = ""
    value: JSON = None
    text: str = ""

    def check(self) -> None:
        """Refuse an assumption that is neither structured nor prose, or both."""
        if bool(self.key.strip()) == bool(self.text.strip()):
            raise UserError("an assumption has either a key (with its value) or a text, not both")


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
        self.budget_usd: float | None = None
        """The session's cost budget, when it has one (the speculation budget is a share)."""
        self._lock = asyncio.Lock()
        self._busy = 0
        self._settled = asyncio.Event()
        self._settled.set()

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

    def hit_rate(self, dep_kind: str, role: str) -> float:
        """The posterior mean probability that a speculation of this kind and role holds."""
        return self.state.rates.mean(dep_kind, role)

    def budget_left_usd(self) -> float:
        """What speculation may still waste (a share of the budget, or of an hour of work)."""
        if self.budget_usd is not None:
            cap = self.policy.budget_share * self.budget_usd
        else:
            cap = self.policy.budget_share * self.policy.usd_per_work_hour
        return max(0.0, cap - self.state.wasted_usd)

    # -- projection -------------------------------------------------------------------------------

    def on_event(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold one event in; when live, start the validation or merge it makes due."""
        event = recorded.event
        self.state.apply(event, recorded.recorded_at)
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
            case TaskStatusChanged(status="completed_tentative", task_id=tid):
                self._spawn(f"finish:{tid}", lambda: self.finish(tid))
            case TaskStatusChanged(
                status="discarded_tentative" | "failed" | "cancelled", task_id=tid
            ) if tid in self.state.active:
                self._spawn(f"drop:{tid}", lambda: self._dropped_elsewhere(tid))
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
    ) -> SpeculationStarted:
        """Start ``task_id`` for ``member`` ahead of its blockers (see the module docs).

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
        decision = self.decision_for(tid, kind, role)
        decided = SpeculationDecided(
            session_id=view.session_id,
            task_id=tid,
            agent_id=member.agent_id,
            speculate=decision.speculate,
            p_hold=decision.p_hold,
            expected_saving_s=decision.expected_saving_s,
            expected_waste_usd=decision.expected_waste_usd,
            value_usd=decision.value_usd,
            reason=decision.reason,
        )
        if not decision.speculate:
            await self.ctx.log.append(decided)
            raise UserError(f"speculation on {view.title!r} declined: {decision.reason}")
        async with self._lock:
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
        return started

    def decision_for(self, task_id: TaskId, kind: str, role: str) -> Decision:
        """The expected-value decision for speculating on ``task_id`` now (not recorded)."""
        board = self.ctx.tasks.board
        view = board.task(task_id)
        wait = 0.0
        for dep in board.waiting_on(task_id):
            blocker = board.task(dep.depends_on)
            wait = max(wait, blocker.work_s or _DEFAULT_WORK_S)
        costs = SpeculationCosts(
            wait_s=wait,
            work_s=view.work_s or _DEFAULT_WORK_S,
            budget_left_usd=self.budget_left_usd(),
        )
        return decide(self.policy, self.hit_rate(kind, role), costs)

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

    # -- validation, merge, discard ---------------------------------------------------------------

    async def check_blocker(self, blocker: TaskId) -> None:
        """Validate every running speculation on ``blocker`` whose edge is now met."""
        for task_id in [t for t, s in self.state.active.items() if blocker in s.started.blockers]:
            await self._validate(task_id, blocker)

    async def _validate(self, task_id: TaskId, blocker: TaskId) -> None:
        async with self._lock:
            spec = self.state.active.get(task_id)
            if spec is None or blocker in spec.held:
                return
            board = self.ctx.tasks.board
            real = board.task(blocker)
            if real.status in ("failed", "cancelled"):
                await self._discard(task_id, "assumption_failed", f"{real.title} {real.status}")
                return
            milestone = next(
                (d.milestone for d in board.dependencies(task_id) if d.depends_on == blocker), None
            )
            reached = real.status == "completed" or (
                milestone is not None and milestone in real.milestones
            )
            if not reached:
                return
            payload = self._payload(blocker, milestone)
            verdicts = [await self._verdict(a, payload) for a in spec.on(blocker)]
            held = all(v.holds for v in verdicts)
            event = SpeculationValidated(
                session_id=spec.started.session_id,
                task_id=task_id,
                on_task=blocker,
                held=held,
                verdicts=tuple(v.to_json() for v in verdicts),
            )
            if held:
                await self.ctx.log.append(event)
            else:
                failed = [v for v in verdicts if not v.holds]
                detail = "; ".join(_explain(spec, v) for v in failed)
                await self._discard(task_id, "assumption_failed", detail, also=[event])
                return
        await self.finish(task_id)

    def _payload(self, blocker: TaskId, milestone: str | None) -> dict[str, JSON]:
        view = self.ctx.tasks.board.task(blocker)
        h = view.handoff or Handoff()
        note = self.state.milestone_notes.get((blocker, milestone), "") if milestone else ""
        return handoff_payload(
            result=view.result,
            files_changed=h.files_changed,
            decisions=h.decisions,
            actions_taken=h.actions_taken,
            open_questions=h.open_questions,
            note=note,
        )

    async def _verdict(self, a: AssumptionAdded, payload: dict[str, JSON]) -> Verdict:
        if a.key:
            if a.key not in payload:
                return Verdict(assumption_id=a.assumption_id, holds=False, reasoning="no such key")
            actual = payload[a.key]
            return Verdict(
                assumption_id=a.assumption_id, holds=same_value(a.value, actual), actual=actual
            )
        if self.judge is None:
            return Verdict(
                assumption_id=a.assumption_id,
                holds=False,
                reasoning="no judge model is configured, so a prose assumption cannot be confirmed",
            )
        output = "\n".join(f"{k}: {v}" for k, v in payload.items() if v not in ("", [], None))
        holds, reasoning = await self.judge.judge(a.text, output)
        return Verdict(assumption_id=a.assumption_id, holds=holds, reasoning=reasoning)

    async def finish(self, task_id: TaskId) -> None:
        """Merge a speculation whose agent finished and whose every blocker held."""
        async with self._lock:
            spec = self.state.active.get(task_id)
            if spec is None or spec.tentative is None or not spec.all_held():
                return
            ws = spec.workspace
            try:
                merged = await self.workspaces.merge(ws, f"speculative work of {task_id}")
            except WorkspaceError as exc:
                await self._discard(task_id, "merge_conflict", str(exc))
                return
            if not merged.ok:
                files = ", ".join(merged.conflicts)
                conflict = ConflictDetected(
                    session_id=spec.started.session_id,
                    conflict_id=new_id("conf_"),
                    conflict_type="file",
                    team_id=self.ctx.tasks.board.task(task_id).team_id,
                    agents=(spec.started.agent_id,),
                    description=f"speculative work on {task_id} conflicts at merge: {files}",
                    path=merged.conflicts[0],
                )
                await self._discard(
                    task_id,
                    "merge_conflict",
                    f"the shared tree changed {files}",
                    also=[conflict],
                    conflicts=merged.conflicts,
                )
                return
            t = spec.tentative
            done = SpeculationMerged(
                session_id=spec.started.session_id,
                task_id=task_id,
                files=merged.merged,
                saved_s=max(0.0, (spec.ready_at or spec.started_at) - spec.started_at),
            )
            handoff = Handoff(
                actions_taken=t.actions_taken,
                files_changed=t.files_changed,
                decisions=t.decisions,
                open_questions=t.open_questions,
            )
            await self.ctx.tasks.settle_speculative(
                task_id,
                merged=True,
                note="speculation held and merged",
                handoff=handoff,
                also=[done],
            )
            await self.workspaces.remove(ws.path, "")

    async def discard(self, task_id: TaskId, reason: str, detail: str) -> None:
        """Throw a speculation away (see :meth:`_discard`), under the lock."""
        async with self._lock:
            if task_id in self.state.active:
                await self._discard(task_id, reason, detail)

    async def _dropped_elsewhere(self, task_id: TaskId) -> None:
        """The task left speculation by another path (failed, cancelled, released)."""
        async with self._lock:
            spec = self.state.active.get(task_id)
            if spec is not None:
                await self._discard(task_id, "failed", "the task left speculation", requeue=False)

    async def _discard(
        self,
        task_id: TaskId,
        reason: str,
        detail: str,
        *,
        also: Sequence[Event] = (),
        conflicts: Sequence[str] = (),
        requeue: bool = True,
    ) -> None:
        spec = self.state.active[task_id]
        now = self.ctx.clock.now()
        dropped = SpeculationDiscarded(
            session_id=spec.started.session_id,
            task_id=task_id,
            reason=reason,  # type: ignore[arg-type]
            detail=detail,
            wasted_s=max(0.0, now - spec.started_at),
            wasted_tokens=spec.tokens,
            wasted_usd=spec.usd,
            wasted_model_calls=spec.calls,
            conflicts=tuple(conflicts),
        )
        view = self.ctx.tasks.board.get(task_id)
        if (
            requeue
            and view is not None
            and view.status
            in (
                "pending_speculative",
                "completed_tentative",
            )
        ):
            await self.ctx.tasks.settle_speculative(
                task_id,
                merged=False,
                note=f"speculation discarded: {detail}",
                also=[*also, dropped],
            )
        else:
            await self.ctx.log.append(*also, dropped)
        ws = spec.workspace
        await self.workspaces.remove(ws.path, ws.branch)


def _explain(spec: Active, verdict: Verdict) -> str:
    assumption = next(a for a in spec.assumptions if a.assumption_id == verdict.assumption_id)
    if assumption.key:
        return f"assumed {assumption.key} = {assumption.value!r}, actual {verdict.actual!r}"
    return f"assumed {assumption.text!r}: {verdict.reasoning}"
