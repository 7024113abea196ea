"""Speculation events (SPEC §3.7): a task started on stated assumptions, checked, merged or not.

Every step of a speculation is one of these, on the speculative task's stream: the decision to
speculate (with its numbers), the assumptions, the isolated workspace, the verdicts when the
blocker's real output arrives, and the merge or the discard with the waste it cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loomkin.core.events.base import JSON, register
from loomkin.core.events.tasks import TaskEvent
from loomkin.ids import AgentId, TaskId

__all__ = [
    "AssumptionAdded",
    "SpeculationDecided",
    "SpeculationDiscarded",
    "SpeculationJudged",
    "SpeculationMerged",
    "SpeculationStarted",
    "SpeculationValidated",
    "SpeculativeMilestoneHeld",
]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationDecided(TaskEvent):
    """The expected-value policy decided whether to speculate on ``task_id``, with its numbers."""

    kind: Literal["speculation_decided"] = "speculation_decided"
    speculate: bool
    p_hold: float
    """Posterior mean probability that the assumptions hold."""
    expected_saving_s: float
    expected_waste_usd: float
    value_usd: float
    """Expected saving priced in dollars minus the expected waste."""
    reason: str
    agent_id: AgentId | None = None
    saving_if_held_s: float = 0.0
    """Forecast critical-path seconds saved if the assumptions hold (0: the task has slack)."""
    at_stake_s: float = 0.0
    """Work done before the check: what a failed guess throws away."""
    budget_left_usd: float = 0.0
    """Speculation budget open at this point of the ramp, less waste and risk so far."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationStarted(TaskEvent):
    """``agent_id`` started ``task_id`` before its blockers finished, in an isolated workspace."""

    kind: Literal["speculation_started"] = "speculation_started"
    agent_id: AgentId
    agent_name: str
    blockers: tuple[TaskId, ...]
    """The unmet predecessors the speculation runs ahead of."""
    workspace: str
    """Absolute path of the isolated workspace (a git worktree or an overlay copy)."""
    workspace_kind: Literal["git", "overlay"]
    branch: str = ""
    base: str = ""
    """The commit the worktree started from (git), empty for an overlay."""
    dep_kind: str = "blocks"
    role: str = ""
    started_by: str = "agent"
    """``agent`` (the ``speculate`` tool) or ``scheduler`` (the idle-capacity policy)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class AssumptionAdded(TaskEvent):
    """One assumption of a speculation: structured (``key`` → ``value``) or prose (``text``)."""

    kind: Literal["assumption_added"] = "assumption_added"
    assumption_id: str
    on_task: TaskId
    key: str = ""
    """A key of the predecessor's hand-off or milestone payload; empty for a prose assumption."""
    value: JSON = None
    text: str = ""
    """A prose assumption (judged by a model when the predecessor's output arrives)."""
    by: AgentId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationValidated(TaskEvent):
    """The assumptions on ``on_task`` were checked against its real output."""

    kind: Literal["speculation_validated"] = "speculation_validated"
    on_task: TaskId
    held: bool
    verdicts: tuple[dict[str, JSON], ...] = ()
    """Per assumption: ``assumption_id``, ``holds``, ``actual`` or ``reasoning``."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationJudged(TaskEvent):
    """A model judged one prose assumption against the blocker's real output: one model call.

    Recorded in the batch of the ``SpeculationValidated`` it led to, with the exact request,
    the answer, the verdict and the reasoning. Its tokens and cost are spend like any model
    call's, charged to the agent whose speculation it checks (``agent_id``), as a
    compaction's summarising call is charged to the agent compacted.
    """

    kind: Literal["speculation_judged"] = "speculation_judged"
    agent_id: AgentId
    """The speculating agent (charged with the call)."""
    assumption_id: str
    on_task: TaskId
    call_id: str
    model: str
    holds: bool
    reasoning: str
    request: dict[str, JSON] = field(default_factory=dict)
    text: str = ""
    """The judge's whole answer."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationMerged(TaskEvent):
    """The workspace was merged into the shared tree (the task completes in the same batch)."""

    kind: Literal["speculation_merged"] = "speculation_merged"
    files: tuple[str, ...] = ()
    saved_s: float = 0.0
    """Time the task ran ahead of its blockers."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculationDiscarded(TaskEvent):
    """The speculation was thrown away: workspace removed, task re-queued with the real output."""

    kind: Literal["speculation_discarded"] = "speculation_discarded"
    reason: Literal[
        "assumption_failed", "merge_conflict", "cancelled", "preempted", "crashed", "failed"
    ]
    detail: str = ""
    wasted_s: float = 0.0
    wasted_tokens: int = 0
    wasted_usd: float = 0.0
    wasted_model_calls: int = 0
    conflicts: tuple[str, ...] = ()
    """Files that could not be merged (for ``merge_conflict``)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculativeMilestoneHeld(TaskEvent):
    """A speculative task reached a milestone before its assumptions were confirmed.

    Held back so that no dependent starts on unconfirmed work: it is emitted (a real
    ``MilestoneEmitted``) in the batch that confirms the last assumption, and dropped with a
    discarded speculation.
    """

    kind: Literal["speculative_milestone_held"] = "speculative_milestone_held"
    name: str
    note: str = ""
    by: AgentId | None = None
