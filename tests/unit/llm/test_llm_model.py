import pytest

from loomkin.core.chat import AssistantMessage, SystemMessage, ToolCall, UserMessage
from loomkin.llm.model import (
    ModelRequest,
    ResponseBuilder,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
)


def test_request_to_json_is_the_exact_request() -> None:
    request = ModelRequest(
        messages=(
            SystemMessage(text="be brief"),
            UserMessage(text="hi"),
            AssistantMessage(tool_calls=(ToolCall(call_id="c1", name="ls", arguments="{}"),)),
        ),
        tools=(ToolSchema(name="ls", description="list", parameters={"type": "object"}),),
        max_tokens=100,
        temperature=0.2,
    )
    assert request.to_json() == {
        "messages": [
            {"kind": "system", "text": "be brief"},
            {"kind": "user", "text": "hi", "source": "user"},
            {
                "kind": "assistant",
                "text": "",
                "interrupted": False,
                "tool_calls": [{"call_id": "c1", "name": "ls", "arguments": "{}"}],
            },
        ],
        "tools": [{"name": "ls", "description": "list", "parameters": {"type": "object"}}],
        "max_tokens": 100,
        "temperature": 0.2,
    }


def test_builder_joins_text_and_tool_call_deltas_by_index() -> None:
    builder = ResponseBuilder()
    for event in [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        ToolCallDelta(index=1, call_id="b", name="write", arguments_delta='{"p"'),
        ToolCallDelta(index=0, call_id="a", name="read", arguments_delta=""),
        ToolCallDelta(index=1, arguments_delta=':"x"}'),
        ToolCallDelta(index=0, arguments_delta="{}"),
        UsageReport(input_tokens=10, output_tokens=1),
        UsageReport(input_tokens=10, output_tokens=7),
        StreamEnd(stop_reason="tool_calls"),
    ]:
        builder.add(event)
    response = builder.build()
    assert response.text == "Hello"
    assert response.tool_calls == (
        ToolCall(call_id="a", name="read", arguments="{}"),
        ToolCall(call_id="b", name="write", arguments='{"p":"x"}'),
    )
    assert (response.input_tokens, response.output_tokens) == (10, 7)
    assert response.stop_reason == "tool_calls"
    assert response.complete
    assert builder.finished


def test_builder_makes_a_stable_id_for_calls_without_one() -> None:
    builder = ResponseBuilder()
    builder.add(ToolCallDelta(index=0, name="ls", arguments_delta="{not json"))
    first = builder.partial()
    builder.add(StreamEnd(stop_reason="tool_calls"))
    second = builder.build()
    assert first.tool_calls[0].call_id.startswith("call_")
    assert first.tool_calls[0].call_id == second.tool_calls[0].call_id
    assert second.tool_calls[0].arguments == "{not json"


def test_partial_of_an_interrupted_stream_is_incomplete() -> None:
    builder = ResponseBuilder()
    builder.add(TextDelta(text="half an ans"))
    partial = builder.partial()
    assert not partial.complete
    assert partial.stop_reason == ""
    assert partial.to_message() == AssistantMessage(text="half an ans", interrupted=True)
    assert partial.to_json()["complete"] is False


@pytest.mark.parametrize("complete", [True, False])
def test_to_message_marks_interrupted_only_when_incomplete(complete: bool) -> None:
    builder = ResponseBuilder()
    builder.add(TextDelta(text="x"))
    if complete:
        builder.add(StreamEnd(stop_reason="stop"))
    assert builder.build().to_message().interrupted is not complete
