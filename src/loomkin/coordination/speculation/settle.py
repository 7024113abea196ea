"""Settling a speculation: validate against the real output, then merge or discard.

Validation runs when a blocker's edge is met: it completes, emits the milestone the edge
waits for, or (a ``requires_output`` edge) publishes its first output. When
every blocker held and the agent finished, the workspace is merged and the task completes in
the same batch as ``SpeculationMerged``; a merge conflict is reported (``ConflictDetected``)
and counts as a failed validation. A failure discards the workspace and re-queues the task
with the waste recorded; an agent still working on the discarded attempt is cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.coordination.speculation.verify import explain, verdict_of
from loomkin.coordination.speculation.workspace import WorkspaceError
from loomkin.core.events import (
    ConflictDetected,
    MilestoneEmitted,
    SpeculationDiscarded,
    SpeculationJudged,
    SpeculationMerged,
    SpeculationValidated,
)
from loomkin.core.speculation import handoff_payload
from loomkin.core.taskview import Handoff
from loomkin.ids import new_id

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable, Sequence

    from loomkin.coordination.base import Context
    from loomkin.coordination.speculation.state import Active, SpeculationState
    from loomkin.coordination.speculation.verify import Judge, Judgement
    from loomkin.coordination.speculation.workspace import Workspaces
    from loomkin.core.events import AssumptionAdded, Event
    from loomkin.core.events.base import JSON
    from loomkin.ids import AgentId, TaskId

__all__ = ["Settler"]


class Settler:
    """Validates, merges and discards the speculations of one session."""

    def __init__(
        self,
        ctx: Context,
        state: SpeculationState,
        workspaces: Workspaces,
        judge: Judge | None,
        lock: asyncio.Lock,
    ) -> None:
        self.ctx = ctx
        self.state = state
        self.workspaces = workspaces
        self.judge = judge
        self._lock = lock
        self.stop_agent: Callable[[AgentId], Awaitable[None]] | None = None
        """Cancels an agent still working on a discarded attempt (set by the session)."""

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
            # The board says when an edge is met (a milestone, the first output of a
            # requires_output edge, a completion): the check comes exactly then, never
            # later than the task would have started without speculating.
            if any(d.depends_on == blocker for d in board.waiting_on(task_id)):
                return
            payload = self._payload(blocker, milestone)
            verdicts = []
            judged: list[SpeculationJudged] = []
            for a in spec.on(blocker):
                verdict, judgement = await verdict_of(a, payload, self.judge)
                verdicts.append(verdict)
                if judgement is not None and judgement.model:  # a model call was made
                    judged.append(_judged(spec, a, judgement))
            stated = bool(spec.assumptions)
            held = stated and all(v.holds for v in verdicts)
            event = SpeculationValidated(
                session_id=spec.started.session_id,
                task_id=task_id,
                on_task=blocker,
                held=held,
                verdicts=tuple(v.to_json() for v in verdicts),
            )
            # The judge's model calls go in the batch of the verdict they led to.
            if held:
                await self.ctx.log.append(*judged, event, *self._release(spec, blocker))
            else:
                failed = [v for v in verdicts if not v.holds]
                detail = "; ".join(explain(spec.assumptions, v) for v in failed)
                detail = detail or "no assumption was stated, so nothing could be confirmed"
                await self._discard(task_id, "assumption_failed", detail, also=[*judged, event])
                return
        await self.finish(task_id)

    def _release(self, spec: Active, blocker: TaskId) -> list[MilestoneEmitted]:
        """The held-back milestones, once this check confirms the last assumption."""
        if not set(spec.started.blockers) <= spec.held | {blocker}:
            return []
        view = self.ctx.tasks.board.task(spec.started.task_id)
        released: list[MilestoneEmitted] = []
        for held in spec.milestones:
            if held.name in view.milestones or any(m.name == held.name for m in released):
                continue
            released.append(
                MilestoneEmitted(
                    session_id=held.session_id,
                    task_id=held.task_id,
                    name=held.name,
                    by=held.by,
                    note=held.note,
                )
            )
        return released

    def _payload(self, blocker: TaskId, milestone: str | None) -> dict[str, JSON]:
        view = self.ctx.tasks.board.task(blocker)
        h = view.handoff or Handoff()
        note = self.state.milestone_notes.get((blocker, milestone), "") if milestone else ""
        if milestone is None and view.status != "completed":
            # A requires_output edge met by partial output: what was published so far.
            note = "\n".join(chunk.content for chunk in view.partial_chunks)
        return handoff_payload(
            result=view.result,
            files_changed=h.files_changed,
            decisions=h.decisions,
            actions_taken=h.actions_taken,
            open_questions=h.open_questions,
            note=note,
        )

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

    async def dropped_elsewhere(self, task_id: TaskId) -> None:
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
            # The work thrown away: from the start to the agent's tentative completion (time
            # spent waiting for the blocker after that cost no work), or to now.
            wasted_s=max(0.0, (spec.tentative_at or now) - spec.started_at),
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
        if spec.tentative is None and self.stop_agent is not None:
            # Still working on an attempt that no longer counts: stop it, so the agent is
            # free for real work (the cancel finds the task no longer its own, and ends).
            await self.stop_agent(spec.started.agent_id)


def _judged(spec: Active, a: AssumptionAdded, j: Judgement) -> SpeculationJudged:
    """The journal entry of one judge's model call (charged to the speculating agent)."""
    return SpeculationJudged(
        session_id=spec.started.session_id,
        task_id=spec.started.task_id,
        agent_id=spec.started.agent_id,
        assumption_id=a.assumption_id,
        on_task=a.on_task,
        call_id=new_id("jc_"),
        model=j.model,
        holds=j.holds,
        reasoning=j.reasoning,
        request=j.request,
        text=j.text,
        input_tokens=j.input_tokens,
        output_tokens=j.output_tokens,
        cost_usd=j.cost_usd,
        latency_ms=j.latency_ms,
    )
