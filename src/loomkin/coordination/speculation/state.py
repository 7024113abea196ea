"""What the speculation service knows, folded from the log (replay and live alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.coordination.speculation.workspace import Workspace
from loomkin.core.events import (
    AssumptionAdded,
    MilestoneEmitted,
    ModelCallCompleted,
    SpeculationDecided,
    SpeculationDiscarded,
    SpeculationJudged,
    SpeculationMerged,
    SpeculationStarted,
    SpeculationValidated,
    SpeculativeMilestoneHeld,
    TaskStatusChanged,
)
from loomkin.core.speculation import HitRates
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from loomkin.core.events import Event
    from loomkin.core.events.base import JSON
    from loomkin.ids import AgentId

__all__ = ["Active", "SpeculationState"]


@dataclass(slots=True)
class Active:
    """One running speculation."""

    started: SpeculationStarted
    started_at: float
    assumptions: list[AssumptionAdded] = field(default_factory=list)
    held: set[TaskId] = field(default_factory=set)
    """Blockers whose real output was checked and matched every assumption on them."""
    tentative: TaskStatusChanged | None = None
    tentative_at: float | None = None
    """When the agent finished its tentative work (the work at stake ends there)."""
    """The agent's tentative completion (result and hand-off), once it finished."""
    milestones: list[SpeculativeMilestoneHeld] = field(default_factory=list)
    """Milestones reached before the assumptions were confirmed (released with them)."""
    ready_at: float | None = None
    """When the last blocker's output was checked and held (the task could start then)."""
    guessed: bool = False
    """A real guess (an assumption checked against a blocker's output) held."""
    tokens: int = 0
    usd: float = 0.0
    calls: int = 0

    @property
    def workspace(self) -> Workspace:
        """The isolated workspace, as recorded."""
        s = self.started
        return Workspace(
            path=Path(s.workspace), kind=s.workspace_kind, branch=s.branch, base=s.base
        )

    def on(self, blocker: TaskId) -> list[AssumptionAdded]:
        """The assumptions about ``blocker``'s output."""
        return [a for a in self.assumptions if a.on_task == blocker]

    def all_held(self) -> bool:
        """True when every blocker was validated and held."""
        return set(self.started.blockers) <= self.held


class SpeculationState:
    """Running speculations, past outcomes (hit rates) and waste, from the events."""

    def __init__(self, *, alpha: float, beta: float) -> None:
        self.active: dict[TaskId, Active] = {}
        self.rates = HitRates(alpha=alpha, beta=beta)
        self.history: dict[TaskId, list[dict[str, JSON]]] = {}
        """Per task, every speculation event as a plain record (what the UI shows)."""
        self.wasted_usd = 0.0
        self.wasted_s = 0.0
        self.wasted_tokens = 0
        self.wasted_calls = 0
        self.model_tokens = 0
        """Tokens of every model call of the session (the whole work waste is a share of)."""
        self.judge_calls = 0
        """The judge's model calls on prose assumptions (and their tokens and cost, below)."""
        self.judge_tokens = 0
        self.judge_usd = 0.0
        self.saved_s = 0.0
        """Time merged speculations ran ahead of their blockers (what speculation gained)."""
        self.held_s = 0.0
        """Work done ahead on guesses that all held, up to their last check (what they earned)."""
        self.counts = {"started": 0, "held": 0, "failed": 0, "merged": 0, "discarded": 0}
        self.milestone_notes: dict[tuple[TaskId, str], str] = {}
        self.replay_notes: dict[TaskId, str] = {}
        """Why the last speculation of a task was discarded (the redo's brief says it)."""
        self.guessed_wrong: set[TaskId] = set()
        """Tasks a speculation of which failed its check (the idle policy does not retry them)."""

    def by_agent(self, agent_id: AgentId) -> Active | None:
        """The running speculation of ``agent_id``, if any."""
        for spec in self.active.values():
            if spec.started.agent_id == agent_id:
                return spec
        return None

    def _ended(self, event: SpeculationMerged | SpeculationDiscarded) -> None:
        self.active.pop(event.task_id, None)
        if isinstance(event, SpeculationMerged):
            self.counts["merged"] += 1
            self.saved_s += event.saved_s
            return
        self.counts["discarded"] += 1
        self.wasted_usd += event.wasted_usd
        self.wasted_s += event.wasted_s
        self.wasted_tokens += event.wasted_tokens
        self.wasted_calls += event.wasted_model_calls
        self.replay_notes[event.task_id] = event.detail

    def _validated(self, event: SpeculationValidated, at: float) -> None:
        spec = self.active[event.task_id]
        if event.verdicts or not event.held:
            # Evidence about guesses: a blocker no assumption was made about "holds"
            # vacuously and says nothing about the hit rate (a task waiting on a dozen
            # blockers would otherwise count a dozen successes for one guess).
            self.rates.record(spec.started.dep_kind, spec.started.role, held=event.held)
        self.counts["held" if event.held else "failed"] += 1
        if event.held:
            was_held = spec.all_held()
            spec.held.add(event.on_task)
            spec.ready_at = at
            spec.guessed = spec.guessed or bool(event.verdicts)
            if spec.all_held() and not was_held and spec.guessed:
                ahead = at if spec.tentative_at is None else min(at, spec.tentative_at)
                self.held_s += max(0.0, ahead - spec.started_at)
        else:
            self.guessed_wrong.add(event.task_id)

    def apply(self, event: Event, at: float) -> None:
        """Fold one event in."""
        if isinstance(event, SpeculationJudged):
            self._spend(event)  # the judge's model call
        match event:
            case SpeculationStarted():
                self.active[event.task_id] = Active(started=event, started_at=at)
                self.counts["started"] += 1
                self.replay_notes.pop(event.task_id, None)
            case AssumptionAdded() if event.task_id in self.active:
                self.active[event.task_id].assumptions.append(event)
            case SpeculationValidated() if event.task_id in self.active:
                self._validated(event, at)
            case SpeculationMerged() | SpeculationDiscarded():
                self._ended(event)
            case ModelCallCompleted():
                self._spend(event)
            case SpeculativeMilestoneHeld() if event.task_id in self.active:
                self.active[event.task_id].milestones.append(event)
            case MilestoneEmitted():
                self.milestone_notes[(event.task_id, event.name)] = event.note
            case TaskStatusChanged(status="completed_tentative") if event.task_id in self.active:
                self.active[event.task_id].tentative = event
                self.active[event.task_id].tentative_at = at
            case _:
                pass
        if isinstance(
            event,
            SpeculationDecided
            | SpeculationStarted
            | AssumptionAdded
            | SpeculationValidated
            | SpeculationJudged
            | SpeculationMerged
            | SpeculationDiscarded
            | SpeculativeMilestoneHeld,
        ):
            self.history.setdefault(event.task_id, []).append(_record(event, at))

    def _spend(self, event: ModelCallCompleted | SpeculationJudged) -> None:
        """Count a model call: the session's work, a running speculation's, the judge's."""
        tokens = event.input_tokens + event.output_tokens
        self.model_tokens += tokens
        if isinstance(event, SpeculationJudged):
            self.judge_calls += 1
            self.judge_tokens += tokens
            self.judge_usd += event.cost_usd
            return
        running = self.by_agent(event.agent_id)
        if running is not None and running.tentative is None:
            running.tokens += tokens
            running.usd += event.cost_usd
            running.calls += 1


def _record(event: Event, at: float) -> dict[str, JSON]:
    fields: dict[str, JSON] = {"at": at}
    for name in type(event).__dataclass_fields__:
        if name in ("session_id", "request"):
            continue  # the judge's request repeats the blocker's output: the log keeps it
        value = getattr(event, name)
        fields[name] = list(value) if isinstance(value, tuple) else value
    return fields
