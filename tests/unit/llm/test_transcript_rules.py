"""The transcript validator states OpenAI's and Anthropic's ordering rules (and catches breaks)."""

from __future__ import annotations

import pytest

from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from loomkin.llm.model import ModelRequest
from loomkin.llm.providers.anthropic import to_anthropic_messages
from loomkin.testing.transcripts import (
    TranscriptError,
    anthropic_problems,
    check_request,
    openai_problems,
    openai_wire_problems,
)

SYSTEM = SystemMessage(text="You are a test agent.")
ASK = UserMessage(text="read both files")


def call(n: int, name: str = "file_read", arguments: str = "{}") -> ToolCall:
    return ToolCall(call_id=f"call_{n}", name=name, arguments=arguments)


def result(n: int, content: str = "ok") -> ToolResultMessage:
    return ToolResultMessage(call_id=f"call_{n}", name="file_read", content=content)


def batch(*ns: int) -> AssistantMessage:
    return AssistantMessage(tool_calls=tuple(call(n) for n in ns))


VALID: list[list[ChatMessage]] = [
    [SYSTEM, ASK],
    [SYSTEM, ASK, batch(1, 2), result(1), result(2), AssistantMessage(text="done")],
    # An urgent message read after the batch was answered (skipped results included).
    [SYSTEM, ASK, batch(1, 2), result(1), result(2), UserMessage(text="urgent", source="peer")],
    # A cut answer, then guidance (a steer), then the answer.
    [SYSTEM, ASK, AssistantMessage(text="half", interrupted=True), UserMessage(text="be brief")],
    # A system notice mid-transcript becomes user text for Anthropic.
    [SYSTEM, ASK, AssistantMessage(text="hi"), SystemMessage(text="budget note")],
    # A request ending with a cut answer (a resumed pause) that ended in whitespace.
    [SYSTEM, ASK, AssistantMessage(text="half an answer ", interrupted=True)],
    # Blank text: the Anthropic adapter drops it.
    [SYSTEM, ASK, AssistantMessage(text="  \n"), UserMessage(text="again")],
]


@pytest.mark.parametrize("messages", VALID, ids=range(len(VALID)))
def test_valid_transcripts_pass_both_providers(messages: list[ChatMessage]) -> None:
    assert openai_problems(messages) == []
    assert anthropic_problems(messages) == []
    check_request(ModelRequest(messages=tuple(messages)))


INVALID: list[tuple[list[ChatMessage], str, str]] = [
    # The bug of issue #14: an urgent message spliced in between the results of one batch.
    (
        [SYSTEM, ASK, batch(1, 2), result(1), UserMessage(text="urgent"), result(2)],
        "user message before calls file_read(call_2) got results",
        "tool_result 'call_2' comes after text (results must come first)",
    ),
    (
        [SYSTEM, ASK, batch(1, 2), result(1)],
        "the request ends before calls file_read(call_2) got results",
        "tool_use ['call_2'] of the message before not answered",
    ),
    (
        [SYSTEM, ASK, result(7)],
        "tool result for 'call_7'",
        "answers no tool_use of the message before",
    ),
    (
        [SYSTEM, ASK, batch(1), result(1), result(1)],
        "tool result for 'call_1'",
        "given twice",
    ),
    (
        [SYSTEM, ASK, batch(1), result(1), batch(1), result(1)],
        "tool call id 'call_1' used twice",
        "tool_use id 'call_1' used twice",
    ),
    (
        [SYSTEM, ASK, AssistantMessage(tool_calls=(call(1, name="read file!"),)), result(1)],
        "tool name 'read file!' is not usable",
        "tool_use name 'read file!' is not usable",
    ),
    (
        [SYSTEM, ASK, AssistantMessage(text="bad \ud800")],
        "not valid UTF-8",
        "",
    ),
    (
        [SYSTEM, AssistantMessage(text="I speak first")],
        "",
        "the first message is not the user's",
    ),
    ([SYSTEM], "", "no messages"),
]


@pytest.mark.parametrize(("messages", "openai", "anthropic"), INVALID, ids=range(len(INVALID)))
def test_broken_rules_are_named(messages: list[ChatMessage], openai: str, anthropic: str) -> None:
    found_openai = openai_problems(messages)
    found_anthropic = anthropic_problems(messages)
    if openai:
        assert any(openai in p for p in found_openai), found_openai
    if anthropic:
        assert any(anthropic in p for p in found_anthropic), found_anthropic
    with pytest.raises(TranscriptError):
        check_request(ModelRequest(messages=tuple(messages)))


def test_the_anthropic_adapter_keeps_requests_valid() -> None:
    _system, wire = to_anthropic_messages(
        (
            SYSTEM,
            ASK,
            AssistantMessage(text=" ", tool_calls=(call(1, arguments="[" * 5000 + "]" * 5000),)),
            result(1, "Error: nested too deeply"),
            AssistantMessage(text="so far ", interrupted=True),
        )
    )
    assert wire[1]["content"] == [  # the blank text block is dropped
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "file_read",
            "input": {"invalid_arguments": "[" * 5000 + "]" * 5000},
        }
    ]
    assert wire[-1] == {"role": "assistant", "content": [{"type": "text", "text": "so far"}]}


def test_the_wire_form_of_openai_requests_is_checked_too() -> None:
    good = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    assert openai_wire_problems(good) == []
    spliced = [*good[:3], {"role": "user", "content": "urgent"}, good[3]]
    assert len(openai_wire_problems(spliced)) == 2
