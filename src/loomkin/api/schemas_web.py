"""Response bodies of the page's own views: the server, the feed's tail, a task, the timeline."""

from __future__ import annotations

from pydantic import BaseModel

from loomkin.api.schemas import FeedRowOut, SessionOut

__all__ = [
    "FeedTail",
    "FileChangeOut",
    "LaneOut",
    "RunSummaryOut",
    "ServerOut",
    "SpanOut",
    "SpendPointOut",
    "TaskDetailOut",
    "TaskEventOut",
    "TimelineOut",
]


class ServerOut(BaseModel):
    """This server process: a page compares ``server_id`` to notice a restart."""

    server_id: str
    """Random per server process: a different value means the server was restarted."""
    started_at: float
    open_sessions: list[str]
    """Sessions this server hosts now (they can be driven; others are read-only)."""


class FeedTail(BaseModel):
    """The newest feed rows before a position, oldest first (page back with ``before``)."""

    rows: list[FeedRowOut]
    first_position: int
    """Position of the oldest event read: pass it as ``before`` for the page before."""
    last_position: int
    """Position of the newest event read (or the log's end): stream live rows after it."""
    more: bool
    """Whether older events may exist before ``first_position``."""


class TaskEventOut(BaseModel):
    """One event of a task's history."""

    position: int
    recorded_at: float
    kind: str
    actor: str
    summary: str
    detail: str
    """A partial result's or a status note's text, whole (may be '')."""


class TaskDetailOut(BaseModel):
    """One task with its history, as the task graph's detail view shows it."""

    task_id: str
    title: str
    description: str
    status: str
    owner: str | None
    priority: int
    effective_priority: int
    milestones: list[str]
    result: str | None
    handoff: list[str]
    """The hand-off's lines (actions, files changed, decisions, open questions)."""
    depends_on: list[str]
    """Titles of the tasks it depends on, with the kind: ``title (blocks)``."""
    dependents: list[str]
    history: list[TaskEventOut]


class LaneOut(BaseModel):
    """One agent's row of the timeline."""

    agent_id: str
    name: str
    team_id: str


class SpanOut(BaseModel):
    """One bar of the timeline (``end`` null: still running)."""

    agent_id: str
    kind: str
    label: str
    start: float
    end: float | None
    outcome: str


class SpendPointOut(BaseModel):
    """An agent's running token and cost totals after one model call."""

    t: float
    agent_id: str
    cost_usd: float
    tokens: int


class TimelineOut(BaseModel):
    """Agents × time: model calls, tool calls and tasks, and spend over time."""

    start: float
    end: float
    lanes: list[LaneOut]
    spans: list[SpanOut]
    spend: list[SpendPointOut]


class FileChangeOut(BaseModel):
    """A changed file and the diff of the completed writes to it."""

    path: str
    writes: int
    diff: list[str]


class RunSummaryOut(BaseModel):
    """What a session did: files with diffs, decisions, tasks by status, calls and spend."""

    session: SessionOut
    files: list[FileChangeOut]
    decisions: list[str]
    tasks: dict[str, int]
    model_calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
