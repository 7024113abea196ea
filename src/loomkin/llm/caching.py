"""Prompt caching: where the cacheable prefix of a request ends, and how big a request is.

How this works and why:

* Providers cache the *prefix* of a request: the bytes from the start up to a point are
  reused when the next request starts with the very same bytes. Loomkin builds every
  request of one agent so that it extends the previous one: tools in a fixed order, the
  system prompt fixed at spawn, the transcript append-only (only compaction rewrites it,
  once, and the requests after it share the new prefix). Nothing volatile (a clock, a
  counter, a roster that changes) goes before the newest messages.
* Anthropic caches only up to blocks marked ``cache_control`` (at most four per request).
  :func:`mark_anthropic_breakpoints` sets them: after the last tool (the schemas), after
  the system prompt, on the last block of the previous user turn (what the previous call
  wrote, read back now) and on the last block of the request (written now, read by the
  next call). Each breakpoint caches everything before it.
* OpenAI caches prefixes of 1,024 tokens and more by itself; the request only has to keep
  its prefix byte-stable, and ``prompt_cache_key`` routes one agent's calls to the same
  cache. The usage says how much was read (``prompt_tokens_details.cached_tokens``).
* :func:`estimate_tokens` is the fixed chars-per-token rule the context window check and
  the cost benchmark use (no tokenizer download, the same answer everywhere).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from loomkin.core.chat import AssistantMessage, SystemMessage, ToolResultMessage, UserMessage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.core.events.base import JSON
    from loomkin.llm.model import ModelRequest, ToolSchema

__all__ = [
    "CHARS_PER_TOKEN",
    "EPHEMERAL",
    "estimate_tokens",
    "journal_prefix_text",
    "mark_anthropic_breakpoints",
    "prefix_text",
    "shared_prefix_tokens",
    "tool_schema_tokens",
]

CHARS_PER_TOKEN = 4
"""The fixed rule: one token per four characters of request text."""

EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
"""Anthropic's cache-control marker (the default five-minute cache)."""


def _tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def tool_schema_tokens(tools: tuple[ToolSchema, ...]) -> int:
    """Estimated tokens of the tool schemas of a request (name, description, JSON schema)."""
    chars = sum(
        len(t.name) + len(t.description) + len(json.dumps(t.parameters, separators=(",", ":")))
        for t in tools
    )
    return _tokens(chars)


def estimate_tokens(request: ModelRequest) -> int:
    """Estimated input tokens of ``request`` (its text and tool schemas, chars / 4)."""
    chars = 0
    for message in request.messages:
        if isinstance(message, SystemMessage | UserMessage):
            chars += len(message.text)
        elif isinstance(message, AssistantMessage):
            chars += len(message.text)
            chars += sum(len(c.name) + len(c.arguments) for c in message.tool_calls)
        elif isinstance(message, ToolResultMessage):
            chars += len(message.content)
    return _tokens(chars) + tool_schema_tokens(request.tools)


def prefix_text(request: ModelRequest) -> str:
    """``request`` serialised in the order a provider caches it: tools, then the messages.

    Two requests share a cached prefix as long as these texts share a prefix; fake models
    and the cost benchmark measure caching with it.
    """
    return journal_prefix_text(request.to_json())


def journal_prefix_text(request: Mapping[str, JSON]) -> str:
    """:func:`prefix_text` of a request as journaled (``ModelRequest.to_json``)."""
    tools = json.dumps(request.get("tools") or [], separators=(",", ":"))
    raw = request.get("messages") or []
    assert isinstance(raw, list | tuple)
    messages = (json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in raw)
    return "\n".join((tools, *messages))


def shared_prefix_tokens(previous: str | None, current: str) -> int:
    """Tokens of ``current`` a prompt cache holding ``previous`` serves (their common prefix)."""
    if not previous:
        return 0
    limit = min(len(previous), len(current))
    low, high = 0, limit  # binary search on slices: fast for the long prefixes that matter
    while low < high:
        mid = (low + high + 1) // 2
        if previous[:mid] == current[:mid]:
            low = mid
        else:
            high = mid - 1
    return low // CHARS_PER_TOKEN


def mark_anthropic_breakpoints(
    system: str, tools: list[Any], messages: list[Any]
) -> list[dict[str, Any]] | None:
    """Set Anthropic cache breakpoints on a request in wire form (``messages`` in place).

    Returns the ``system`` parameter as text blocks ending in a breakpoint (``None`` when
    there is no system prompt). The last tool gets one; so do the last block of the previous
    user turn and the last block of the final message. At most four in all, as the API
    allows. Blocks that cannot carry one (thinking) are skipped.
    """
    if tools:
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}
    blocks: list[dict[str, Any]] | None = None
    if system:
        blocks = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    marked = 0
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if marked == 1 and message["role"] != "user":
            continue  # the second breakpoint goes on the previous user turn
        if _mark_last_block(messages, index):
            marked += 1
        if marked == 2:
            break
    return blocks


def _mark_last_block(messages: list[Any], index: int) -> bool:
    message = messages[index]
    content = message["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not content:
        return False
    last = content[-1]
    if last.get("type") not in ("text", "tool_use", "tool_result", "image", "document"):
        return False
    content = [*content[:-1], {**last, "cache_control": EPHEMERAL}]
    messages[index] = {**message, "content": content}
    return True
