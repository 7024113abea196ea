from __future__ import annotations

import subprocess
import sys

from _telemetry_log import (
    CODER,
    HELPER,
    LEAD,
    ROOT,
    SESSION,
    SESSION_UUID,
    SUB,
    Log,
    session_log,
)

from loomkin.core.events import (
    AgentFailedPermanently,
    ModelCallFailed,
    ModelCallStarted,
    SpeculationJudged,
    ToolCallCompleted,
)
from loomkin.ids import AgentId, CallId, TaskId
from loomkin.telemetry import SpanRecord, TraceBuilder, spans_from_events, trace_id_for


def by_key(spans: list[SpanRecord]) -> dict[str, SpanRecord]:
    keyed = {s.key: s for s in spans}
    assert len(keyed) == len(spans), "every span is closed exactly once"
    return keyed


def test_the_tree_follows_teams_and_spawners() -> None:
    spans = by_key(spans_from_events(session_log()))
    parents = {key: span.parent_key for key, span in spans.items()}
    assert parents == {
        f"session:{SESSION}": None,
        f"team:{ROOT}": f"session:{SESSION}",
        f"agent:{LEAD}": f"team:{ROOT}",
        f"model_call:{LEAD}:mc_1": f"agent:{LEAD}",
        f"tool_call:{LEAD}:call_1": f"agent:{LEAD}",
        # The sub-team the lead made sits under the lead, its agent under that team.
        f"team:{SUB}": f"agent:{LEAD}",
        f"agent:{CODER}": f"team:{SUB}",
        f"model_call:{CODER}:mc_2": f"agent:{CODER}",
        f"tool_call:{CODER}:call_2": f"agent:{CODER}",
        # A helper the lead spawned into its own team sits under the lead.
        f"agent:{HELPER}": f"agent:{LEAD}",
        f"model_call:{HELPER}:mc_3": f"agent:{HELPER}",
    }
    for span in spans.values():
        parent = span.parent_key
        assert span.parent_span_id == (None if parent is None else spans[parent].span_id)
        assert span.trace_id == SESSION_UUID.int


def test_names_and_genai_attributes() -> None:
    spans = by_key(spans_from_events(session_log()))
    chat = spans[f"model_call:{LEAD}:mc_1"]
    assert (chat.name, chat.kind) == ("chat claude-sonnet-4-5", "client")
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert chat.attributes["gen_ai.provider.name"] == "anthropic"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120
    assert chat.attributes["gen_ai.usage.output_tokens"] == 30
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert chat.attributes["gen_ai.conversation.id"] == SESSION
    assert chat.attributes["loomkin.task.id"] == "task_1"
    assert (chat.start_s, chat.end_s) == (1002, 1005)

    tool = spans[f"tool_call:{LEAD}:call_1"]
    assert tool.name == "execute_tool spawn_team"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "spawn_team"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert (tool.start_s, tool.end_s, tool.status) == (1005.5, 1006.5, "unset")

    lead = spans[f"agent:{LEAD}"]
    assert lead.name == "invoke_agent Lead"
    assert lead.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert lead.attributes["gen_ai.agent.name"] == "Lead"
    assert lead.attributes["gen_ai.agent.id"] == LEAD
    assert lead.attributes["gen_ai.usage.input_tokens"] == 120
    coder = spans[f"agent:{CODER}"]
    assert coder.attributes["loomkin.agent.spawned_by"] == LEAD
    assert spans[f"team:{SUB}"].name == "team backend"

    session = spans[f"session:{SESSION}"]
    assert session.name == "session demo"
    assert session.attributes["loomkin.usage.input_tokens"] == 120 + 50
    assert session.attributes["loomkin.usage.output_tokens"] == 30 + 10
    assert session.attributes["loomkin.session.end_reason"] == "user closed it"
    assert (session.start_s, session.end_s) == (1000, 1018)


def test_content_is_left_out_unless_asked_for() -> None:
    plain = by_key(spans_from_events(session_log()))[f"tool_call:{LEAD}:call_1"]
    assert "gen_ai.tool.call.arguments" not in plain.attributes
    rich = by_key(spans_from_events(session_log(), include_content=True))
    tool = rich[f"tool_call:{LEAD}:call_1"]
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"name":"backend"}'
    assert tool.attributes["gen_ai.tool.call.result"] == "team backend created"
    assert rich[f"model_call:{LEAD}:mc_1"].attributes["gen_ai.output.text"] == "spawning a team"


def test_a_retry_is_an_event_of_its_call() -> None:
    chat = by_key(spans_from_events(session_log()))[f"model_call:{LEAD}:mc_1"]
    (retry,) = chat.events
    assert (retry.name, retry.at_s) == ("loomkin.retry", 1003)
    assert retry.attributes == {"loomkin.retry.attempt": 1, "error.message": "HTTP 429 slow down"}
    assert chat.status == "unset"


def test_a_crash_ends_the_running_call_with_an_error() -> None:
    spans = by_key(spans_from_events(session_log()))
    cut = spans[f"tool_call:{CODER}:call_2"]
    assert (cut.end_s, cut.status) == (1012, "error")
    assert "crashed: boom" in cut.status_message
    coder = spans[f"agent:{CODER}"]
    assert [e.name for e in coder.events] == ["loomkin.agent.crashed", "loomkin.agent.restarted"]
    # The agent ends with its team.
    assert (coder.end_s, coder.status) == (1016, "unset")


def test_a_call_open_when_the_session_ends_still_ends() -> None:
    spans = by_key(spans_from_events(session_log()))
    open_call = spans[f"model_call:{HELPER}:mc_3"]
    assert (open_call.start_s, open_call.end_s, open_call.status) == (1015, 1018, "error")
    assert "session ended" in open_call.status_message


def test_an_unfinished_log_ends_every_span_at_its_last_event() -> None:
    spans = by_key(spans_from_events(session_log(ended=False)))
    assert len(spans) == 11
    call = spans[f"model_call:{HELPER}:mc_3"]
    assert (call.end_s, call.status) == (1016, "error")
    assert call.attributes["loomkin.unfinished"] is True
    session = spans[f"session:{SESSION}"]
    assert (session.end_s, session.status, session.attributes["loomkin.unfinished"]) == (
        1016,
        "unset",
        True,
    )
    assert "loomkin.unfinished" not in spans[f"agent:{CODER}"].attributes  # its team ended it


def test_spans_leave_as_their_closing_events_arrive() -> None:
    builder = TraceBuilder()
    closed = [(e.event.kind, [s.key for s in builder.add(e)]) for e in session_log()]
    closing = [(kind, keys) for kind, keys in closed if keys]
    assert closing == [
        ("model_call_completed", [f"model_call:{LEAD}:mc_1"]),
        ("tool_call_completed", [f"tool_call:{LEAD}:call_1"]),
        ("model_call_completed", [f"model_call:{CODER}:mc_2"]),
        ("agent_crashed", [f"tool_call:{CODER}:call_2"]),
        # The crashed call's late result adds nothing; the team's end takes its agent along.
        ("team_dissolved", [f"agent:{CODER}", f"team:{SUB}"]),
        (
            "session_ended",
            [
                f"model_call:{HELPER}:mc_3",
                f"agent:{HELPER}",
                f"agent:{LEAD}",
                f"team:{ROOT}",
                f"session:{SESSION}",
            ],
        ),
    ]
    assert builder.open_spans == 0
    assert builder.ended(SESSION)
    assert builder.finish() == []


def test_ids_are_derived_from_the_log() -> None:
    first = spans_from_events(session_log())
    again = spans_from_events(session_log())
    assert [(s.key, s.span_id) for s in first] == [(s.key, s.span_id) for s in again]
    assert len({s.span_id for s in first}) == len(first)
    assert trace_id_for(SESSION) == SESSION_UUID.int
    assert first[0].trace_id_hex == SESSION_UUID.hex
    assert trace_id_for("not-a-uuid") == trace_id_for("not-a-uuid") != 0


def test_agents_whose_spawn_is_out_of_view_hang_under_the_session() -> None:
    log = Log()
    ghost = AgentId("agent_ghost")
    log.at(
        5,
        ModelCallStarted(
            session_id=SESSION,
            agent_id=ghost,
            call_id=CallId("mc_9"),
            iteration=3,
            model="scripted",
            request={},
        ),
    )
    log.at(
        6,
        ModelCallFailed(
            session_id=SESSION,
            agent_id=ghost,
            call_id=CallId("mc_9"),
            error="HTTP 400 bad request",
            attempt=1,
            will_retry=False,
        ),
    )
    spans = by_key(spans_from_events(log))
    call = spans[f"model_call:{ghost}:mc_9"]
    assert (call.status, call.status_message, call.end_s) == ("error", "HTTP 400 bad request", 6)
    assert call.attributes["gen_ai.request.model"] == "scripted"
    assert "gen_ai.provider.name" not in call.attributes
    assert spans[f"agent:{ghost}"].parent_key == f"session:{SESSION}"


def test_skipped_calls_and_permanent_failures_are_errors() -> None:
    log = session_log(ended=False)
    log.at(
        1017,
        ToolCallCompleted(
            session_id=SESSION,
            agent_id=LEAD,
            call_id=CallId("call_9"),
            tool="run_shell",
            result="denied by the user",
            is_error=True,
            outcome="denied",
        ),
    )
    log.at(
        1017.5,
        AgentFailedPermanently(session_id=SESSION, agent_id=HELPER, error="crashed 5 times"),
    )
    spans = by_key(spans_from_events(log))
    denied = spans[f"tool_call:{LEAD}:call_9"]
    assert (denied.start_s, denied.end_s, denied.status) == (1017, 1017, "error")
    assert denied.attributes["error.type"] == "tool_denied"
    helper = spans[f"agent:{HELPER}"]
    assert (helper.status, helper.status_message, helper.end_s) == (
        "error",
        "crashed 5 times",
        1017.5,
    )
    assert spans[f"model_call:{HELPER}:mc_3"].end_s == 1017.5


def test_the_span_builder_needs_no_opentelemetry() -> None:
    code = "import sys, loomkin.telemetry; print('opentelemetry' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_a_speculation_judges_call_is_a_model_call_of_the_speculating_agent() -> None:
    log = session_log(ended=False)
    log.at(
        1017,
        SpeculationJudged(
            session_id=SESSION,
            task_id=TaskId("task_2"),
            agent_id=LEAD,
            assumption_id="as_1",
            on_task=TaskId("task_1"),
            call_id="jc_1",
            model="openai:gpt-4.1-mini",
            holds=False,
            reasoning="the schema is yaml",
            text="FAILS\nthe schema is yaml",
            input_tokens=200,
            output_tokens=20,
            cost_usd=0.001,
            latency_ms=500.0,
        ),
    )
    spans = by_key(spans_from_events(log))
    judge = spans[f"model_call:{LEAD}:jc_1"]
    assert judge.parent_key == f"agent:{LEAD}"
    assert (judge.name, judge.kind, judge.start_s, judge.end_s) == (
        "chat gpt-4.1-mini",
        "client",
        1016.5,
        1017,
    )
    assert judge.attributes["loomkin.speculation.judge"] is True
    assert judge.attributes["loomkin.speculation.holds"] is False
    assert judge.attributes["gen_ai.usage.input_tokens"] == 200
    assert judge.attributes["loomkin.cost_usd"] == 0.001
    lead = spans[f"agent:{LEAD}"]
    assert lead.attributes["gen_ai.usage.input_tokens"] == 120 + 200
