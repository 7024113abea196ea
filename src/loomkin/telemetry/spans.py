"""Spans from the event log: session → team → agent → model call / tool call.

How this works and why:

* The log already holds every fact a trace needs (SPEC §3.17), so spans are *built from
  events*, never recorded beside them: a finished session exports exactly as a live one
  did. :class:`TraceBuilder` folds :class:`~loomkin.core.events.RecordedEvent` values in log
  order and returns each span when its closing event arrives (``ModelCallCompleted`` closes
  a model call, ``TeamDissolved`` a team, ``SessionEnded`` everything of the session).
  :meth:`TraceBuilder.finish` ends whatever is still open at the last recorded time,
  marked ``loomkin.unfinished``; a call cut short by a crash or a kill ends with an error
  status. Start and end times are the events' ``recorded_at``.
* Parents follow causality, so a sub-agent is never an orphaned trace: an agent's span sits
  under the span of the agent that spawned it (``AgentSpawned.spawned_by``), or under its
  team's span when that team is itself below the spawner (a sub-team the spawner created,
  so the tree reads spawner → team → agent) or when nobody spawned it. A team's span sits
  under its spawner's span, else under its parent team's, else under the session's.
* Ids are derived from the log (:mod:`loomkin.telemetry.records`): the trace id is the
  session's UUID, a span id a hash of its key (``agent:<id>``,
  ``model_call:<agent>:<call id>`` …), so a re-export yields the same trace.
* Attributes follow the OpenTelemetry GenAI semantic conventions (``gen_ai.operation.name``
  ``chat`` / ``execute_tool`` / ``invoke_agent``, ``gen_ai.request.model``,
  ``gen_ai.usage.*``, ``gen_ai.tool.*``, ``gen_ai.agent.*``); what they have no name for
  is under ``loomkin.*``. Prompt and tool contents stay out unless asked for
  (``include_content``), as the conventions advise: they may hold secrets.

This module needs no OpenTelemetry package; :mod:`loomkin.telemetry.otel` turns the
records into SDK spans.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, assert_never

from loomkin.core.events import (
    AgentCrashed,
    AgentEvent,
    AgentFailedPermanently,
    AgentRestarted,
    AgentSpawned,
    ControlApplied,
    Event,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    RecordedEvent,
    SessionEnded,
    SessionStarted,
    SpeculationJudged,
    TeamCreated,
    TeamDissolved,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.telemetry.records import (
    AttributeValue,
    SpanEvent,
    SpanKind,
    SpanRecord,
    SpanStatus,
    span_id_for,
    trace_id_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["TraceBuilder", "spans_from_events"]


@dataclass(slots=True, kw_only=True)
class _Open:
    """A span that has started and not yet ended (mutable while events arrive)."""

    key: str
    parent_key: str | None
    session_id: str
    name: str
    kind: SpanKind
    start_s: float
    attributes: dict[str, AttributeValue]
    events: list[SpanEvent] = field(default_factory=list)
    team_key: str | None = None
    """For an agent span: its team's span key (the agent ends with its team)."""


_CONTENT_LIMIT = 4096
"""Characters of a prompt, answer or tool result kept with ``include_content``."""


class TraceBuilder:
    """Turns recorded events, in log order, into :class:`SpanRecord` values.

    Feed every event to :meth:`add`, which returns the spans that event closed; call
    :meth:`finish` when no more events will come (the end of a finished session's log, or
    of a live stream) to end the spans still open. Events of several sessions may be mixed;
    each session is its own trace.

    Args:
        include_content: Also record tool arguments and results and the model's answers
            (``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``,
            ``gen_ai.output.text``), clipped to 4096 characters. Off by default: they may
            hold secrets.
    """

    def __init__(self, *, include_content: bool = False) -> None:
        self._include_content = include_content
        self._open: dict[str, _Open] = {}
        self._parents: dict[str, str | None] = {}
        """Every span ever opened → its parent; closed spans can still be parents."""
        self._last_s: dict[str, float] = {}
        """Per session, the latest ``recorded_at`` seen (where :meth:`finish` ends spans)."""
        self._ended: set[str] = set()
        """Sessions whose ``SessionEnded`` was seen."""

    @property
    def open_spans(self) -> int:
        """How many spans have started and not ended."""
        return len(self._open)

    def ended(self, session_id: str) -> bool:
        """True once ``SessionEnded`` of ``session_id`` was added."""
        return session_id in self._ended

    def add(self, recorded: RecordedEvent) -> list[SpanRecord]:  # noqa: C901  # one flat dispatch over event kinds
        """Fold one event in; return the spans it closed (children before parents)."""
        event, at = recorded.event, recorded.recorded_at
        session = event.session_id
        self._last_s[session] = max(at, self._last_s.get(session, at))
        self._session_span(event, at)
        match event:
            case SessionStarted():
                return []
            case SessionEnded():
                self._ended.add(session)
                return self._end_session(session, at, event.reason)
            case TeamCreated():
                self._team_created(event, at)
            case TeamDissolved():
                return self._team_dissolved(event, at)
            case AgentSpawned():
                self._agent_spawned(event, at)
            case ModelCallStarted():
                self._model_call_started(event, at)
            case ModelCallCompleted():
                return self._model_call_completed(event, at)
            case ModelCallFailed():
                return self._model_call_failed(event, at)
            case SpeculationJudged():
                return self._speculation_judged(event, at)
            case ToolCallStarted():
                self._tool_call_started(event, at)
            case ToolCallCompleted():
                return self._tool_call_completed(event, at)
            case AgentCrashed() | AgentRestarted() | ControlApplied():
                return self._agent_incident(event, at)
            case AgentFailedPermanently():
                return self._agent_failed(event, at)
            case AgentEvent():
                self._agent_span(event.session_id, event.agent_id, at)
            case _:
                pass  # tasks, messages, votes …: facts of the session, not spans of their own
        return []

    def finish(self) -> list[SpanRecord]:
        """End every open span at its session's last recorded time, marked unfinished.

        A call still open here never got its closing event (the process was killed, or
        the log ends mid-call), so it ends with an error status; an agent, team or
        session still open simply had not ended yet.
        """
        closed: list[SpanRecord] = []
        for key in sorted(self._open, key=self._depth, reverse=True):
            span = self._open[key]
            at = self._last_s[span.session_id]
            span.attributes["loomkin.unfinished"] = True
            if _is_call(key):
                closed.append(self._close(key, at, "error", "unfinished: no result in the log"))
            else:
                closed.append(self._close(key, at, "unset", ""))
        return closed

    # -- session and teams ---------------------------------------------------------------------

    def _session_span(self, event: Event, at: float) -> None:
        """Start the session's span at its first event (``SessionStarted`` names it)."""
        key = f"session:{event.session_id}"
        if key not in self._parents:
            new = self._start(key, None, event.session_id, f"session {event.session_id}", at)
            new.attributes.update(
                {"gen_ai.conversation.id": event.session_id, "loomkin.session.id": event.session_id}
            )
        span = self._open.get(key)
        if span is not None and isinstance(event, SessionStarted):
            if event.title:
                span.name = f"session {event.title}"
            span.attributes.update(
                {
                    "loomkin.session.project_root": event.project_root,
                    "loomkin.session.title": event.title,
                    "loomkin.session.model": event.model,
                    "loomkin.team.root_id": event.root_team_id,
                }
            )

    def _end_session(self, session: str, at: float, reason: str) -> list[SpanRecord]:
        keys = [k for k, s in self._open.items() if s.session_id == session]
        closed: list[SpanRecord] = []
        for key in sorted(keys, key=self._depth, reverse=True):
            if _is_call(key):
                closed.append(self._close(key, at, "error", "unfinished: the session ended"))
            else:
                if key.startswith("session:") and reason:
                    self._open[key].attributes["loomkin.session.end_reason"] = reason
                closed.append(self._close(key, at, "unset", ""))
        return closed

    def _team_created(self, event: TeamCreated, at: float) -> None:
        spawner = _agent_key(event.spawned_by)
        parent_team = _team_key(event.parent_team_id)
        parent = next(
            (k for k in (spawner, parent_team) if k is not None and k in self._parents),
            f"session:{event.session_id}",
        )
        span = self._start(
            f"team:{event.team_id}", parent, event.session_id, f"team {event.name}", at
        )
        span.attributes.update(
            {
                "loomkin.team.id": event.team_id,
                "loomkin.team.name": event.name,
                "loomkin.team.depth": event.depth,
            }
        )
        if event.parent_team_id is not None:
            span.attributes["loomkin.team.parent_id"] = event.parent_team_id
        if event.spawned_by is not None:
            span.attributes["loomkin.team.spawned_by"] = event.spawned_by
        if event.purpose:
            span.attributes["loomkin.team.purpose"] = event.purpose

    def _team_dissolved(self, event: TeamDissolved, at: float) -> list[SpanRecord]:
        team = f"team:{event.team_id}"
        if team not in self._open:
            return []
        if event.reason:
            self._open[team].attributes["loomkin.team.dissolve_reason"] = event.reason
        # The team's agents end with it, and so do their calls (cut short, hence errors).
        members = {k for k, s in self._open.items() if s.team_key == team}
        keys = [k for k in self._open if self._below_any(k, members)]
        keys.sort(key=self._depth, reverse=True)
        closed = [self._close_cut(k, at, "unfinished: the team was dissolved") for k in keys]
        closed.append(self._close(team, at, "unset", ""))
        return closed

    # -- agents --------------------------------------------------------------------------------

    def _agent_spawned(self, event: AgentSpawned, at: float) -> None:
        key = f"agent:{event.agent_id}"
        team = f"team:{event.team_id}"
        spawner = _agent_key(event.spawned_by)
        known_team = team in self._parents
        if spawner is not None and spawner in self._parents:
            # Under the sub-team the spawner made (spawner → team → agent), else the spawner.
            below = known_team and self._is_below(team, spawner)
            parent = team if below else spawner
        else:
            parent = team if known_team else f"session:{event.session_id}"
        span = self._open.get(key) or self._start(key, parent, event.session_id, "", at)
        span.name = f"invoke_agent {event.name}"
        span.team_key = team
        span.attributes.update(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": event.name,
                "gen_ai.agent.id": event.agent_id,
                "loomkin.agent.role": event.role,
                "loomkin.team.id": event.team_id,
            }
        )
        span.attributes.update(_model_attributes(event.model))
        if event.spawned_by is not None:
            span.attributes["loomkin.agent.spawned_by"] = event.spawned_by

    def _agent_span(self, session: str, agent_id: str, at: float) -> _Open | None:
        """The agent's open span; one is made up for an agent whose spawn is not in view."""
        key = f"agent:{agent_id}"
        if key in self._open:
            return self._open[key]
        if key in self._parents:
            return None  # ended (its team or session ended); later events add nothing
        span = self._start(key, f"session:{session}", session, f"invoke_agent {agent_id}", at)
        span.attributes.update(
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent_id}
        )
        return span

    def _agent_incident(
        self, event: AgentCrashed | AgentRestarted | ControlApplied, at: float
    ) -> list[SpanRecord]:
        agent = self._agent_span(event.session_id, event.agent_id, at)
        closed: list[SpanRecord] = []
        attributes: dict[str, AttributeValue]
        match event:
            case AgentCrashed():
                name, attributes = "loomkin.agent.crashed", {"error.message": event.error}
                # The crash cut its running calls short: they end now, with the crash's error.
                owner = f"agent:{event.agent_id}"
                calls = [k for k in self._open if _is_call(k) and self._parents[k] == owner]
                reason = f"the agent crashed: {event.error}"
                closed = [self._close_cut(k, at, reason) for k in calls]
            case AgentRestarted():
                name = "loomkin.agent.restarted"
                attributes = {"loomkin.restart.attempt": event.attempt}
            case ControlApplied():
                name = "loomkin.control.applied"
                attributes = {
                    "loomkin.control.action": event.action,
                    "loomkin.control.checkpoint": event.checkpoint,
                    "loomkin.control.latency_ms": event.latency_ms,
                }
            case _:
                assert_never(event)
        if agent is not None:
            agent.events.append(SpanEvent(name=name, at_s=at, attributes=attributes))
        return closed

    def _agent_failed(self, event: AgentFailedPermanently, at: float) -> list[SpanRecord]:
        key = f"agent:{event.agent_id}"
        if key not in self._open:
            return []
        below = sorted(
            (k for k in self._open if k != key and self._is_below(k, key)),
            key=self._depth,
            reverse=True,
        )
        closed = [self._close_cut(k, at, f"the agent failed: {event.error}") for k in below]
        self._open[key].attributes["error.type"] = "agent_failed"
        closed.append(self._close(key, at, "error", event.error))
        return closed

    # -- model calls ---------------------------------------------------------------------------

    def _model_call_started(self, event: ModelCallStarted, at: float) -> None:
        self._agent_span(event.session_id, event.agent_id, at)
        key = f"model_call:{event.agent_id}:{event.call_id}"
        model = event.model.partition(":")[2] or event.model
        span = self._start(key, f"agent:{event.agent_id}", event.session_id, f"chat {model}", at)
        span.kind = "client"
        span.attributes.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.conversation.id": event.session_id,
                "gen_ai.agent.id": event.agent_id,
                "loomkin.call.id": event.call_id,
                "loomkin.model_call.iteration": event.iteration,
            }
        )
        span.attributes.update(_model_attributes(event.model))
        if event.task_id is not None:
            span.attributes["loomkin.task.id"] = event.task_id

    def _model_call_completed(self, event: ModelCallCompleted, at: float) -> list[SpanRecord]:
        key = f"model_call:{event.agent_id}:{event.call_id}"
        span = self._open.get(key)
        if span is None:
            return []
        span.attributes.update(
            {
                "gen_ai.usage.input_tokens": event.input_tokens,
                "gen_ai.usage.output_tokens": event.output_tokens,
                "loomkin.cost_usd": event.cost_usd,
                "loomkin.latency_ms": event.latency_ms,
                "loomkin.model_call.interrupted": event.interrupted,
                "loomkin.model_call.tool_calls": len(event.tool_calls),
            }
        )
        if event.stop_reason:
            span.attributes["gen_ai.response.finish_reasons"] = (event.stop_reason,)
        if self._include_content:
            span.attributes["gen_ai.output.text"] = event.text[:_CONTENT_LIMIT]
        self._add_usage(f"agent:{event.agent_id}", event)
        self._add_usage(f"session:{event.session_id}", event)
        return [self._close(key, at, "unset", "")]

    def _model_call_failed(self, event: ModelCallFailed, at: float) -> list[SpanRecord]:
        key = f"model_call:{event.agent_id}:{event.call_id}"
        span = self._open.get(key)
        if span is None:
            return []
        if event.will_retry:
            attributes: dict[str, AttributeValue] = {
                "loomkin.retry.attempt": event.attempt,
                "error.message": event.error,
            }
            span.events.append(SpanEvent(name="loomkin.retry", at_s=at, attributes=attributes))
            return []
        span.attributes["error.type"] = "provider_error"
        return [self._close(key, at, "error", event.error)]

    def _speculation_judged(self, event: SpeculationJudged, at: float) -> list[SpanRecord]:
        """The judge's call on a prose assumption: a model call of the speculating agent.

        One event holds the whole call, so the span starts ``latency_ms`` before it.
        """
        if self._agent_span(event.session_id, event.agent_id, at) is None:
            return []
        key = f"model_call:{event.agent_id}:{event.call_id}"
        model = event.model.partition(":")[2] or event.model
        start = at - event.latency_ms / 1000.0
        span = self._start(key, f"agent:{event.agent_id}", event.session_id, f"chat {model}", start)
        span.kind = "client"
        span.attributes.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.conversation.id": event.session_id,
                "gen_ai.agent.id": event.agent_id,
                "loomkin.call.id": event.call_id,
                "loomkin.task.id": event.task_id,
                "loomkin.speculation.judge": True,
                "loomkin.speculation.holds": event.holds,
                "gen_ai.usage.input_tokens": event.input_tokens,
                "gen_ai.usage.output_tokens": event.output_tokens,
                "loomkin.cost_usd": event.cost_usd,
                "loomkin.latency_ms": event.latency_ms,
            }
        )
        span.attributes.update(_model_attributes(event.model))
        if self._include_content:
            span.attributes["gen_ai.output.text"] = event.text[:_CONTENT_LIMIT]
        self._add_usage(f"agent:{event.agent_id}", event)
        self._add_usage(f"session:{event.session_id}", event)
        return [self._close(key, at, "unset", "")]

    def _add_usage(self, key: str, event: ModelCallCompleted | SpeculationJudged) -> None:
        span = self._open.get(key)
        if span is None:
            return
        prefix = "gen_ai.usage" if key.startswith("agent:") else "loomkin.usage"
        for name, value in (
            (f"{prefix}.input_tokens", event.input_tokens),
            (f"{prefix}.output_tokens", event.output_tokens),
        ):
            before = span.attributes.get(name, 0)
            assert isinstance(before, int)
            span.attributes[name] = before + value
        cost = span.attributes.get("loomkin.cost_usd", 0.0)
        assert isinstance(cost, float | int)
        span.attributes["loomkin.cost_usd"] = cost + event.cost_usd

    # -- tool calls ----------------------------------------------------------------------------

    def _tool_call_started(self, event: ToolCallStarted, at: float) -> None:
        self._agent_span(event.session_id, event.agent_id, at)
        key = f"tool_call:{event.agent_id}:{event.call_id}"
        span = self._start(
            key, f"agent:{event.agent_id}", event.session_id, f"execute_tool {event.tool}", at
        )
        span.attributes.update(
            _tool_attributes(event.session_id, event.agent_id, event.call_id, event.tool)
        )
        if event.target:
            span.attributes["loomkin.tool.target"] = event.target
        if self._include_content:
            arguments = json.dumps(event.arguments, separators=(",", ":"))
            span.attributes["gen_ai.tool.call.arguments"] = arguments[:_CONTENT_LIMIT]

    def _tool_call_completed(self, event: ToolCallCompleted, at: float) -> list[SpanRecord]:
        key = f"tool_call:{event.agent_id}:{event.call_id}"
        span = self._open.get(key)
        if span is None:
            if key in self._parents:
                return []  # already ended (a crash cut it short); the late result adds nothing
            # Skipped or denied calls never start: they get a span of no length, to be seen.
            self._agent_span(event.session_id, event.agent_id, at)
            parent = f"agent:{event.agent_id}"
            span = self._start(key, parent, event.session_id, f"execute_tool {event.tool}", at)
            span.attributes.update(
                _tool_attributes(event.session_id, event.agent_id, event.call_id, event.tool)
            )
        span.attributes["loomkin.tool.outcome"] = event.outcome
        span.attributes["loomkin.tool.duration_ms"] = event.duration_ms
        if self._include_content:
            span.attributes["gen_ai.tool.call.result"] = event.result[:_CONTENT_LIMIT]
        if event.is_error or event.outcome != "ok":
            span.attributes["error.type"] = f"tool_{event.outcome}"
            return [self._close(key, at, "error", event.result[:200])]
        return [self._close(key, at, "unset", "")]

    # -- the span table ------------------------------------------------------------------------

    def _start(self, key: str, parent: str | None, session: str, name: str, at: float) -> _Open:
        span = _Open(
            key=key,
            parent_key=parent,
            session_id=session,
            name=name,
            kind="internal",
            start_s=at,
            attributes={},
        )
        self._open[key] = span
        self._parents[key] = parent
        return span

    def _close(self, key: str, at: float, status: SpanStatus, message: str) -> SpanRecord:
        span = self._open.pop(key)
        trace_id = trace_id_for(span.session_id)
        return SpanRecord(
            key=key,
            parent_key=span.parent_key,
            trace_id=trace_id,
            span_id=span_id_for(span.session_id, key),
            parent_span_id=(
                None if span.parent_key is None else span_id_for(span.session_id, span.parent_key)
            ),
            name=span.name,
            kind=span.kind,
            start_s=span.start_s,
            end_s=max(at, span.start_s),
            attributes=dict(span.attributes),
            events=tuple(span.events),
            status=status,
            status_message=message if status == "error" else "",
        )

    def _close_cut(self, key: str, at: float, reason: str) -> SpanRecord:
        """End a span whose work was cut short: calls fail, agents and teams just end."""
        if _is_call(key):
            return self._close(key, at, "error", reason)
        return self._close(key, at, "unset", "")

    def _depth(self, key: str) -> int:
        depth, parent = 0, self._parents.get(key)
        while parent is not None:
            depth, parent = depth + 1, self._parents.get(parent)
        return depth

    def _is_below(self, key: str, ancestor: str) -> bool:
        """True if ``ancestor`` is ``key`` or one of its ancestors."""
        current: str | None = key
        while current is not None:
            if current == ancestor:
                return True
            current = self._parents.get(current)
        return False

    def _below_any(self, key: str, ancestors: set[str]) -> bool:
        """True if one of ``ancestors`` is ``key`` or one of its ancestors."""
        return any(self._is_below(key, a) for a in ancestors)


def spans_from_events(
    events: Iterable[RecordedEvent], *, include_content: bool = False
) -> list[SpanRecord]:
    """Return every span of the events (a finished session's log), open ones ended.

    Args:
        events: Recorded events in log order (``store.read(session_id=...)``).
        include_content: See :class:`TraceBuilder`.
    """
    builder = TraceBuilder(include_content=include_content)
    spans = [span for recorded in events for span in builder.add(recorded)]
    spans.extend(builder.finish())
    return spans


def _is_call(key: str) -> bool:
    return key.startswith(("model_call:", "tool_call:"))


def _agent_key(agent_id: str | None) -> str | None:
    return None if agent_id is None else f"agent:{agent_id}"


def _team_key(team_id: str | None) -> str | None:
    return None if team_id is None else f"team:{team_id}"


def _model_attributes(spec: str) -> dict[str, AttributeValue]:
    """``anthropic:claude-sonnet-4-5`` → the provider and the model, as GenAI names them."""
    provider, sep, model = spec.partition(":")
    if not sep:
        return {"gen_ai.request.model": spec} if spec else {}
    # gen_ai.system is the older name of gen_ai.provider.name; many backends still read it.
    return {
        "gen_ai.request.model": model,
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
    }


def _tool_attributes(
    session: str, agent_id: str, call_id: str, tool: str
) -> dict[str, AttributeValue]:
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.conversation.id": session,
        "gen_ai.agent.id": agent_id,
        "gen_ai.tool.name": tool,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
    }
