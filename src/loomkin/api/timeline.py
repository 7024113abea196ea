"""Views the page computes from a session's whole log: the timeline, spend over time, a task.

How this works and why: these answer "what happened when", which no projection keeps, so
they are folded from the session's events on request (the page asks when the view is
opened, not per event). They read events only, so a finished session and a live one are
shown the same way.

* The timeline has one lane per agent; a span is a model call (start → completion or final
  failure), a tool call (start → completion) or a task the agent worked on (in progress →
  completed/failed/cancelled). An open span has ``end = None`` (still running).
* Spend over time is one point per completed model call: the agent's running totals, so
  the page draws a line per agent and the team's sum without adding anything up itself.
* Bounded: at most :data:`MAX_SPANS` spans (the newest) and :data:`MAX_POINTS` spend points
  (evenly thinned, the last always kept), whatever the length of the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentSpawned,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    SpeculationJudged,
    TaskEvent,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
)

if TYPE_CHECKING:
    from loomkin.core.events import RecordedEvent

__all__ = [
    "MAX_POINTS",
    "MAX_SPANS",
    "Lane",
    "Span",
    "SpendPoint",
    "Timeline",
    "build_timeline",
    "task_history",
]

MAX_SPANS = 4000
MAX_POINTS = 1500
_TASK_END = frozenset({"completed", "failed", "cancelled"})


@dataclass(slots=True, kw_only=True)
class Span:
    """One bar of the timeline."""

    agent_id: str
    kind: str
    """``model``, ``tool`` or ``task``."""
    label: str
    start: float
    end: float | None = None
    outcome: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lane:
    """One agent's row of the timeline."""

    agent_id: str
    name: str
    team_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendPoint:
    """An agent's running totals after one completed model call."""

    t: float
    agent_id: str
    cost_usd: float
    tokens: int


@dataclass(slots=True, kw_only=True)
class Timeline:
    """Lanes, spans and spend points of one session."""

    start: float = 0.0
    end: float = 0.0
    lanes: list[Lane] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    spend: list[SpendPoint] = field(default_factory=list)


@dataclass(slots=True)
class _Fold:
    timeline: Timeline
    open_calls: dict[str, Span | None] = field(default_factory=dict)
    open_tasks: dict[str, Span | None] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    def add(self, recorded: RecordedEvent) -> None:
        event, t = recorded.event, recorded.recorded_at
        spans = self.timeline.spans
        match event:
            case AgentSpawned():
                self.timeline.lanes.append(
                    Lane(agent_id=event.agent_id, name=event.name, team_id=event.team_id)
                )
            case ModelCallStarted():
                span = Span(agent_id=event.agent_id, kind="model", label=event.model, start=t)
                self.open_calls[event.call_id] = span
                spans.append(span)
            case ToolCallStarted():
                label = f"{event.tool} {event.target}".strip()
                span = Span(agent_id=event.agent_id, kind="tool", label=label, start=t)
                self.open_calls[event.call_id] = span
                spans.append(span)
            case ModelCallCompleted():
                self._close(event.call_id, t, "interrupted" if event.interrupted else "ok")
                self._spend(event, t)
            case SpeculationJudged():  # a judge's call, charged to the speculating agent
                self._spend(event, t)
            case ModelCallFailed(will_retry=False):
                self._close(event.call_id, t, "error")
            case ToolCallCompleted():
                self._close(event.call_id, t, event.outcome)
            case TaskStatusChanged():
                self._task(event, t)
            case _:
                pass

    def _close(self, call_id: str, t: float, outcome: str) -> None:
        span = self.open_calls.pop(call_id, None)
        if span is not None:
            span.end, span.outcome = t, outcome

    def _spend(self, event: ModelCallCompleted | SpeculationJudged, t: float) -> None:
        agent = event.agent_id
        self.cost[agent] = self.cost.get(agent, 0.0) + event.cost_usd
        self.tokens[agent] = self.tokens.get(agent, 0) + event.input_tokens + event.output_tokens
        self.timeline.spend.append(
            SpendPoint(t=t, agent_id=agent, cost_usd=self.cost[agent], tokens=self.tokens[agent])
        )

    def _task(self, event: TaskStatusChanged, t: float) -> None:
        if event.status == "in_progress" and event.by is not None:
            span = Span(agent_id=event.by, kind="task", label=event.task_id, start=t)
            self.open_tasks[event.task_id] = span
            self.timeline.spans.append(span)
        elif event.status in _TASK_END or event.status in {"pending", "paused", "blocked"}:
            ended = self.open_tasks.pop(event.task_id, None)
            if ended is not None:
                ended.end, ended.outcome = t, event.status


def build_timeline(events: list[RecordedEvent], titles: dict[str, str]) -> Timeline:
    """Fold a session's events into its timeline (``titles``: task id → title)."""
    fold = _Fold(Timeline())
    for recorded in events:
        fold.add(recorded)
    timeline = fold.timeline
    if events:
        timeline.start, timeline.end = events[0].recorded_at, events[-1].recorded_at
    for span in timeline.spans:
        if span.kind == "task":
            span.label = titles.get(span.label, span.label)
    timeline.spans = timeline.spans[-MAX_SPANS:]
    timeline.spend = _thin(timeline.spend)
    return timeline


def _thin(points: list[SpendPoint]) -> list[SpendPoint]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS - 1)]
    return [*kept, points[-1]]


def task_history(events: list[RecordedEvent], task_id: str) -> list[RecordedEvent]:
    """The events about ``task_id`` (created, assigned, status, milestones, partial results)."""
    return [
        r
        for r in events
        if isinstance(r.event, TaskEvent)
        and (r.event.task_id == task_id or getattr(r.event, "depends_on", None) == task_id)
    ]
