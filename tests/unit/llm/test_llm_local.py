import json

from loomkin.core.chat import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from loomkin.llm.model import ResponseBuilder, StreamEnd, ToolSchema
from loomkin.llm.providers.local import CallParser, models_dir, render_turns

TOOL = ToolSchema(
    name="file_read",
    description="Read a file.\n\nMore detail.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def _parse(*pieces: str) -> ResponseBuilder:
    parser, builder = CallParser(), ResponseBuilder()
    for piece in pieces:
        for event in parser.feed(piece):
            builder.add(event)
    for event in parser.finish():
        builder.add(event)
    builder.add(StreamEnd(stop_reason="stop"))
    return builder


def test_a_streamed_call_keeps_its_arguments_and_drops_its_own_brace() -> None:
    response = _parse(
        '{"tool": "file_', 'read", "arguments": ', '{"path": "a.py"', "}", "}"
    ).build()
    (call,) = response.tool_calls
    assert call.name == "file_read"
    assert json.loads(call.arguments) == {"path": "a.py"}
    assert response.text == ""


def test_a_call_cut_short_passes_on_its_partial_arguments() -> None:
    (call,) = _parse('{"tool": "file_read", "arguments": {"path": "a').build().tool_calls
    assert call.arguments == '{"path": "a'


def test_text_and_blank_answers() -> None:
    assert _parse("Hello ", "{world}").build().text == "Hello {world}"
    assert _parse("").build().text == ""


def test_turns_alternate_and_tools_are_described_compactly() -> None:
    call = ToolCall(call_id="c1", name="file_read", arguments='{"path": "a.py"}')
    turns = render_turns(
        (
            SystemMessage(text="You are alice."),
            UserMessage(text="Read a.py"),
            AssistantMessage(text="", tool_calls=(call,)),
            ToolResultMessage(call_id="c1", name="file_read", content="x" * 5000),
        ),
        (TOOL,),
    )
    assert [t.split("\n", 1)[0] for t in turns] == [
        "<start_of_turn>user",
        "<start_of_turn>model",
        "<start_of_turn>user",
    ]
    assert "- file_read(path: string): Read a file." in turns[0]
    assert '{"tool": "file_read", "arguments": {"path": "a.py"}}' in turns[1]
    assert "[... clipped]" in turns[2]


def test_models_dir_honours_xdg_cache_home() -> None:
    assert str(models_dir({"XDG_CACHE_HOME": "/c"})) == "/c/loomkin/models"
