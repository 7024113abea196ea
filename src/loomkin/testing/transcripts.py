"""Checking that a model request is one OpenAI and Anthropic would both accept.

How this works and why:

* Both providers reject a request whose messages break their ordering rules (HTTP 400),
  and the agent would then fail on every call from that point on: a transcript, once
  journaled, is sent again and again. These checks state the rules so the test suite can
  hold every request a fake model receives to them (:func:`check_requests` in
  :mod:`loomkin.testing.models`, switched on for the whole suite in ``tests/conftest.py``).
* OpenAI's rules apply to the provider-neutral messages directly (the adapter maps them one
  to one): an assistant message's tool calls are each answered by exactly one tool result,
  in the messages right after it, before any other message; a tool result answers a call
  of the assistant message just before; ids are unique and names usable; every string is
  valid UTF-8.
* Anthropic's rules apply to the messages as its adapter maps them
  (:func:`~loomkin.llm.providers.anthropic.to_anthropic_messages`): the first message is the
  user's, roles alternate, no content is empty and no text block is blank, every ``tool_use``
  is answered by a ``tool_result`` in the next (user) message, where the results come before
  any text, a ``tool_result`` answers a ``tool_use`` of the message just before, inputs are
  JSON objects a strict encoder accepts, and a final assistant message does not end in
  whitespace. The adapter (and with it the ``anthropic`` SDK) is imported on first use only.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolResultMessage,
    UserMessage,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from loomkin.llm.model import ModelRequest

__all__ = [
    "TranscriptError",
    "anthropic_problems",
    "anthropic_wire_problems",
    "check_request",
    "openai_problems",
    "openai_wire_problems",
    "request_problems",
]

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")


class TranscriptError(AssertionError):
    """A request breaks a provider's rules; the message lists every problem."""


def request_problems(request: ModelRequest) -> list[str]:
    """Return every rule ``request`` breaks, for OpenAI then Anthropic (empty when valid)."""
    messages = request.messages
    return [f"openai: {p}" for p in openai_problems(messages)] + [
        f"anthropic: {p}" for p in anthropic_problems(messages)
    ]


def check_request(request: ModelRequest) -> None:
    """Raise :class:`TranscriptError` if ``request`` breaks a rule of either provider."""
    problems = request_problems(request)
    if problems:
        raise TranscriptError("invalid transcript:\n  " + "\n  ".join(problems))


# -- OpenAI ----------------------------------------------------------------------------------


def openai_problems(messages: Sequence[ChatMessage]) -> list[str]:
    """Return the chat-completions ordering rules ``messages`` break."""
    problems: list[str] = []
    pending: dict[str, str] = {}
    """Calls of the last assistant message still waiting for their result: id → name."""
    seen_ids: set[str] = set()
    for i, message in enumerate(messages):
        problems.extend(f"message {i}: {p}" for p in _unicode_problems(message))
        match message:
            case AssistantMessage():
                if pending:
                    problems.append(
                        f"message {i}: assistant message before {_ids(pending)} got results"
                    )
                problems.extend(f"message {i}: {p}" for p in _call_problems(message, seen_ids))
                pending = {call.call_id: call.name for call in message.tool_calls}
            case ToolResultMessage(call_id=call_id):
                if call_id not in pending:
                    problems.append(
                        f"message {i}: tool result for {call_id!r}, which is not an unanswered "
                        "call of the assistant message just before"
                    )
                pending.pop(call_id, None)
            case SystemMessage() | UserMessage():
                if pending:
                    problems.append(
                        f"message {i}: {message.kind} message before {_ids(pending)} got results"
                    )
                    pending = {}
    if pending:
        problems.append(f"the request ends before {_ids(pending)} got results")
    return problems


def openai_wire_problems(wire_messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the ordering rules the chat-completions ``messages`` of a request break.

    The wire form of :func:`openai_problems`, for requests a test server receives.
    """
    problems: list[str] = []
    pending: set[str] = set()
    seen_ids: set[str] = set()
    for i, message in enumerate(wire_messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                problems.append(
                    f"message {i}: tool message for {call_id!r} answers no pending call"
                )
            pending.discard(str(call_id))
            continue
        if pending:
            problems.append(
                f"message {i}: {role} message before calls {sorted(pending)} got results"
            )
            pending = set()
        for call in message.get("tool_calls") or ():
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id or call_id in seen_ids:
                problems.append(f"message {i}: tool call id {call_id!r} missing or used twice")
            name = call.get("function", {}).get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                problems.append(f"message {i}: tool name {name!r} is not usable")
            seen_ids.add(str(call_id))
            pending.add(str(call_id))
    if pending:
        problems.append(f"the request ends before calls {sorted(pending)} got results")
    return problems


def _call_problems(message: AssistantMessage, seen_ids: set[str]) -> Iterable[str]:
    for call in message.tool_calls:
        if not call.call_id:
            yield "a tool call without an id"
        elif call.call_id in seen_ids:
            yield f"tool call id {call.call_id!r} used twice"
        if not _TOOL_NAME.match(call.name):
            yield f"tool name {call.name!r} is not usable"
        seen_ids.add(call.call_id)


def _ids(pending: Mapping[str, str]) -> str:
    return "calls " + ", ".join(f"{name}({call_id})" for call_id, name in pending.items())


def _unicode_problems(message: ChatMessage) -> Iterable[str]:
    texts: list[str] = []
    match message:
        case SystemMessage(text=text) | UserMessage(text=text):
            texts.append(text)
        case AssistantMessage(text=text, tool_calls=calls):
            texts.append(text)
            for call in calls:
                texts += [call.call_id, call.name, call.arguments]
        case ToolResultMessage(call_id=call_id, name=name, content=content):
            texts += [call_id, name, content]
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            yield f"a string is not valid UTF-8 ({exc.reason} at {exc.start})"
            return


# -- Anthropic -------------------------------------------------------------------------------


def anthropic_problems(messages: Sequence[ChatMessage]) -> list[str]:
    """Return the Messages-API rules ``messages``, as the adapter maps them, break."""
    from loomkin.llm.providers.anthropic import to_anthropic_messages

    _system, wire = to_anthropic_messages(tuple(messages))
    return anthropic_wire_problems([dict(m) for m in wire])


def anthropic_wire_problems(wire_messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the Messages-API rules the wire-form ``messages`` of a request break."""
    problems: list[str] = []
    if not wire_messages:
        return ["no messages"]
    if wire_messages[0]["role"] != "user":
        problems.append("the first message is not the user's")
    seen_ids: set[str] = set()
    expected: set[str] = set()
    """tool_use ids of the assistant message just before, which this message must answer."""
    for i, message in enumerate(wire_messages):
        role = message["role"]
        blocks: list[Mapping[str, Any]] = list(message["content"])
        if i > 0 and wire_messages[i - 1]["role"] == role:
            problems.append(f"message {i}: two {role} messages in a row")
        if not blocks:
            problems.append(f"message {i}: empty content")
        problems.extend(f"message {i}: {p}" for p in _block_problems(blocks))
        if role == "assistant":
            if expected:
                problems.append(f"message {i}: tool_use {sorted(expected)} not answered")
            expected = set()
            for block in blocks:
                if block["type"] == "tool_use":
                    problems.extend(
                        f"message {i}: {p}" for p in _tool_use_problems(block, seen_ids)
                    )
                    expected.add(block["id"])
                    seen_ids.add(block["id"])
        else:
            problems.extend(f"message {i}: {p}" for p in _result_problems(blocks, expected))
            expected = set()
    if expected:
        problems.append(f"the request ends before tool_use {sorted(expected)} got results")
    problems.extend(_final_problems(wire_messages[-1]))
    return problems


def _final_problems(last: Mapping[str, Any]) -> Iterable[str]:
    if last["role"] != "assistant" or not last["content"]:
        return
    final = list(last["content"])[-1]
    if final["type"] == "text" and final["text"] != final["text"].rstrip():
        yield "the final assistant message ends with whitespace"


def _block_problems(blocks: Sequence[Mapping[str, Any]]) -> Iterable[str]:
    for block in blocks:
        if block["type"] == "text" and not block["text"].strip():
            yield "a blank text block"


def _tool_use_problems(block: Mapping[str, Any], seen_ids: set[str]) -> Iterable[str]:
    if not block["id"]:
        yield "a tool_use without an id"
    elif block["id"] in seen_ids:
        yield f"tool_use id {block['id']!r} used twice"
    if not _TOOL_NAME.match(block["name"]):
        yield f"tool_use name {block['name']!r} is not usable"
    value = block["input"]
    if not isinstance(value, dict):
        yield f"tool_use input is {type(value).__name__}, not an object"
        return
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, RecursionError) as exc:
        yield f"tool_use input is not strict JSON ({type(exc).__name__})"


def _result_problems(blocks: Sequence[Mapping[str, Any]], expected: set[str]) -> Iterable[str]:
    answered: set[str] = set()
    other_seen = False
    for block in blocks:
        if block["type"] != "tool_result":
            other_seen = True
            continue
        tool_use_id = block["tool_use_id"]
        if other_seen:
            yield f"tool_result {tool_use_id!r} comes after text (results must come first)"
        if tool_use_id not in expected:
            yield f"tool_result {tool_use_id!r} answers no tool_use of the message before"
        elif tool_use_id in answered:
            yield f"tool_result {tool_use_id!r} given twice"
        answered.add(tool_use_id)
    missing = expected - answered
    if missing:
        yield f"tool_use {sorted(missing)} of the message before not answered"
