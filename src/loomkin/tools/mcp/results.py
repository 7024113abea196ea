"""An MCP tool result as the text the model reads.

A ``CallToolResult`` holds content blocks (text, images, audio, resource links, embedded
resources), optionally a structured (JSON) value, and an ``isError`` flag. The model gets
text: text blocks as they are, the structured value as JSON when no block carries text
(the MCP specification asks servers to send its text form beside it), and a one-line note for what
it cannot read (an image, audio, binary data), so it knows something came back. ``isError``
results become error results of the call. The whole is capped like shell output.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, assert_never

if TYPE_CHECKING:
    from mcp.types import CallToolResult, ContentBlock

__all__ = ["RESULT_CAP", "render_result"]

RESULT_CAP = 20_000
"""Most characters of one result the model is shown (head and tail are kept)."""


def render_result(result: CallToolResult, *, cap: int = RESULT_CAP) -> tuple[str, bool]:
    """Return the text the model reads for ``result`` and whether it is an error."""
    from mcp.types import EmbeddedResource, TextContent

    parts = [_block(block) for block in result.content]
    structured = result.structured_content
    # Servers send structured content with its text form beside it (the specification asks
    # them to); it is shown only when no block carries text, so the model reads it once.
    has_text = any(isinstance(b, TextContent | EmbeddedResource) for b in result.content)
    if structured is not None and not has_text:
        parts.append(json.dumps(structured, ensure_ascii=False, sort_keys=True))
    text = "\n".join(p for p in parts if p)
    if not text:
        text = "(the tool failed and said nothing)" if result.is_error else "(no output)"
    return _clip(text, cap), result.is_error


def _block(block: ContentBlock) -> str:
    from mcp.types import (
        AudioContent,
        BlobResourceContents,
        EmbeddedResource,
        ImageContent,
        ResourceLink,
        TextContent,
    )

    match block:
        case TextContent(text=text):
            return text
        case ImageContent(mime_type=mime, data=data):
            return f"[image: {mime}, {_size(data)}; not shown to you]"
        case AudioContent(mime_type=mime, data=data):
            return f"[audio: {mime}, {_size(data)}; not shown to you]"
        case ResourceLink(uri=uri, name=name, mime_type=mime):
            return f"[resource link: {name} <{uri}>{f' ({mime})' if mime else ''}]"
        case EmbeddedResource(resource=resource):
            if isinstance(resource, BlobResourceContents):
                mime = resource.mime_type or "binary data"
                return f"[resource {resource.uri}: {mime}, {_size(resource.blob)}; not shown]"
            return f"[resource {resource.uri}]\n{resource.text}"
        case _:
            assert_never(block)


def _size(data: str) -> str:
    try:
        n = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return "undecodable data"
    return f"{n:,} bytes"


def _clip(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    half = cap // 2
    dropped = len(text) - 2 * half
    return f"{text[:half]}\n[... {dropped:,} characters cut ...]\n{text[-half:]}"
