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
    "ANTHROPIC_URL",
    "GENERIC_PROFILE",
    "LLAMACPP_PROFILE",
    "OPENAI_PROFILE",
    "OPENAI_URL",
    "OPENROUTER_PROFILE",
    "OPENROUTER_URL",
    "EndpointProfile",
    "check_base_url",
    "profile_for",
    "same_endpoint",
]

OPENAI_URL = "https://api.openai.com/v1"
"""OpenAI's own endpoint: the only one ``OPENAI_API_KEY`` is sent to."""
ANTHROPIC_URL = "https://api.anthropic.com"
"""Anthropic's own endpoint: the only one ``ANTHROPIC_API_KEY`` is sent to."""
OPENROUTER_URL = "https://openrouter.ai/api/v1"
"""OpenRouter's own endpoint: the only one ``OPENROUTER_API_KEY`` is sent to."""


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
    sends_prompt_cache_key: bool = False
    """Send ``prompt_cache_key`` (the request's :attr:`~loomkin.llm.model.ModelRequest.cache_key`)
    so one agent's calls reach the same prompt cache (OpenAI's own endpoint)."""
    tool_results_as_user: bool = False
    """Send tool results as ``user`` messages: the ``chatml-function-calling`` template of
    llama-cpp-python renders no ``tool`` messages, so the model would never see a result."""


OPENAI_PROFILE = EndpointProfile(
    name="openai",
    supports_parallel_tool_calls=True,
    max_tokens_param="max_completion_tokens",
    sends_prompt_cache_key=True,
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


def same_endpoint(url: str | None, home: str) -> bool:
    """Whether ``url`` is the provider endpoint ``home`` (``None``: yes, the default).

    Scheme, host and port must match exactly: ``http://api.openai.com`` (a key in clear
    text), ``https://api.openai.com.evil.example`` and ``https://api.openai.com:8443`` are
    other endpoints. The path may differ (``/v1``, ``/v1/``): it stays on the same host.
    """
    if url is None:
        return True
    ours, theirs = urlsplit(url.strip()), urlsplit(home)
    try:
        port = ours.port or (443 if ours.scheme.lower() == "https" else 80)
    except ValueError:
        return False
    return (
        ours.scheme.lower() == theirs.scheme
        and (ours.hostname or "").lower() == theirs.hostname
        and port == (theirs.port or 443)
        and not ours.username
        and not ours.password
    )


def check_base_url(url: str) -> str:
    """Return ``url`` stripped if it can be a model server's address, else raise ``ValueError``.

    It must be ``http://`` or ``https://`` with a host, no credentials (they would be sent to
    every request's logs and error messages), no spaces or control characters.
    """
    text = url.strip()
    if not text:
        raise ValueError("the base URL is empty")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise ValueError("the base URL contains spaces or control characters")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"the base URL must look like http://host:port/v1 or https://host/v1, got {text!r}"
        )
    try:
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        raise ValueError(f"the base URL has an invalid port: {text!r}") from None
    if parts.username or parts.password:
        raise ValueError("put no credentials in the base URL; name a key with --api-key-env")
    return text
