"""Endpoint profiles: what an OpenAI-compatible server accepts.

The chat-completions wire format is shared by the official API and by local servers
(Ollama, vLLM, llama.cpp server, LM Studio) and routers (OpenRouter), but they differ in
small ways that break requests. A profile names those differences as flags, and
:func:`profile_for` picks one from the base URL and the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "GENERIC_PROFILE",
    "LLAMACPP_PROFILE",
    "OPENAI_PROFILE",
    "OPENROUTER_PROFILE",
    "EndpointProfile",
    "profile_for",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointProfile:
    """Quirks of one OpenAI-compatible endpoint."""

    name: str
    """Short name for logs and errors (``"openai"``, ``"llamacpp"``, ``"generic"``)."""
    assistant_content_null_with_tool_calls_ok: bool = True
    """False when the server rejects ``content: null`` on an assistant message with tool
    calls (llama.cpp server); an empty string is sent instead."""
    supports_stream_usage: bool = True
    """Send ``stream_options: {"include_usage": true}`` to get token counts when streaming."""
    supports_parallel_tool_calls: bool = False
    """Send ``parallel_tool_calls: true`` with tools (only endpoints known to accept it)."""
    supports_temperature: bool = True
    """False for models that reject ``temperature`` (OpenAI's o-series reasoning models)."""
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """Which request field caps the output."""
    sends_tool_choice_auto: bool = False
    """Send ``tool_choice: "auto"`` with tools: llama-cpp-python's server ignores the tools
    of a request that does not name a tool choice."""
    streams_tool_calls: bool = True
    """False when the server cannot stream an answer that may call a tool (llama-cpp-python's
    ``chatml-function-calling`` fails with "Automatic streaming tool choice is not
    supported"); requests with tools are then made whole and replayed as stream events."""
    tool_results_as_user: bool = False
    """Send tool results as ``user`` messages: the ``chatml-function-calling`` template of
    llama-cpp-python renders no ``tool`` messages, so the model would never see a result."""


OPENAI_PROFILE = EndpointProfile(
    name="openai",
    supports_parallel_tool_calls=True,
    max_tokens_param="max_completion_tokens",
)
OPENROUTER_PROFILE = EndpointProfile(name="openrouter")
LLAMACPP_PROFILE = EndpointProfile(
    name="llamacpp",
    # Every flag here is safe for llama.cpp's own C++ server too, so one profile serves both.
    assistant_content_null_with_tool_calls_ok=False,
    sends_tool_choice_auto=True,
    streams_tool_calls=False,
    tool_results_as_user=True,
)
GENERIC_PROFILE = EndpointProfile(
    name="generic",
    # Unknown local servers: be conservative. An empty string is accepted everywhere.
    assistant_content_null_with_tool_calls_ok=False,
)

_LOCAL_PORT_PROFILES = {8080: LLAMACPP_PROFILE}
"""Default ports of servers with known quirks (llama.cpp server listens on 8080)."""


def profile_for(base_url: str | None, model: str) -> EndpointProfile:
    """Return the profile for ``model`` served at ``base_url`` (``None``: official OpenAI)."""
    host, port = _host_port(base_url)
    if host == "api.openai.com":
        profile = OPENAI_PROFILE
        if _is_reasoning_model(model):
            profile = dataclasses.replace(profile, supports_temperature=False)
        return profile
    if host.endswith("openrouter.ai"):
        return OPENROUTER_PROFILE
    return _LOCAL_PORT_PROFILES.get(port, GENERIC_PROFILE) if port is not None else GENERIC_PROFILE


def _host_port(base_url: str | None) -> tuple[str, int | None]:
    if base_url is None:
        return "api.openai.com", 443
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port


def _is_reasoning_model(model: str) -> bool:
    return len(model) > 1 and model[0] == "o" and model[1].isdigit()
