"""A key goes only to its provider's own endpoint, or where the user named it (SECURITY.md).

Each test points a real adapter (the vendor's SDK) at a local server that records the
headers it received, with the provider keys set in the environment, and checks which key
arrived.
"""

from __future__ import annotations

import json

import pytest

from loomkin.core.chat import UserMessage
from loomkin.errors import ConfigError, MissingCredentials
from loomkin.llm.model import ModelRequest, TextDelta
from loomkin.llm.profiles import (
    ANTHROPIC_URL,
    OPENAI_URL,
    OPENROUTER_URL,
    check_base_url,
    same_endpoint,
)
from loomkin.llm.providers.anthropic import AnthropicModel
from loomkin.llm.providers.openai import OpenAIModel
from loomkin.llm.registry import make_model
from loomkin.testing.wire import SSE, JSONReply, SSEReply, WireRequest, WireServer

SECRETS = {
    "OPENAI_API_KEY": "sk-openai-secret",
    "ANTHROPIC_API_KEY": "sk-ant-secret",
    "OPENROUTER_API_KEY": "sk-or-secret",
}


def _openai_text() -> SSEReply:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}],
    }
    return SSEReply(events=(SSE(json.dumps(chunk)), SSE("[DONE]")))


def _anthropic_text() -> SSEReply:
    def event(kind: str, body: dict[str, object]) -> SSE:
        return SSE(json.dumps({"type": kind, **body}), event=kind)

    message = {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": []}
    usage = {"input_tokens": 1, "output_tokens": 1}
    return SSEReply(
        events=(
            event("message_start", {"message": {**message, "usage": usage}}),
            event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            ),
            event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "ok"}}
            ),
            event("content_block_stop", {"index": 0}),
            event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": usage}),
            event("message_stop", {}),
        )
    )


def _reply(request: WireRequest) -> JSONReply | SSEReply:
    if request.path.endswith("/messages"):
        return _anthropic_text()
    return _openai_text()


async def _sent_key(spec: str, *, env: dict[str, str], path: str = "/v1", **kwargs: str) -> str:
    """Build ``spec`` against a recording server; return the key it received."""
    async with WireServer(_reply) as server:
        model = make_model(spec, base_url=server.base_url + path, env=env, retry=None, **kwargs)
        request = ModelRequest(messages=(UserMessage(text="hi"),))
        events = [e async for e in model.stream(request)]
        assert any(isinstance(e, TextDelta) for e in events)
        [received] = server.requests
    headers = received.headers
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("openai:gpt-4.1", "/v1"),
        ("anthropic:claude-test", ""),
        ("openrouter:openai/gpt-4.1", "/v1"),
        ("ollama:llama3", "/v1"),
        ("openai-compatible:qwen", "/v1"),
    ],
)
async def test_a_custom_base_url_never_gets_a_providers_key(spec: str, path: str) -> None:
    key = await _sent_key(spec, env=SECRETS, path=path)
    assert key not in SECRETS.values()
    assert key == "loomkin-local"


@pytest.mark.parametrize(
    ("spec", "path"),
    [("openai:gpt-4.1", "/v1"), ("anthropic:claude-test", ""), ("vllm:qwen", "/v1")],
)
async def test_a_custom_base_url_gets_the_key_the_user_names(spec: str, path: str) -> None:
    env = {**SECRETS, "MY_SERVER_KEY": "sk-mine"}
    key = await _sent_key(spec, env=env, path=path, api_key_env="MY_SERVER_KEY")
    assert key == "sk-mine"


async def test_a_named_key_that_is_missing_is_an_error_naming_it() -> None:
    with pytest.raises(MissingCredentials, match=r"\$MY_SERVER_KEY.*not set"):
        make_model(
            "openai:x", base_url="http://127.0.0.1:9/v1", api_key_env="MY_SERVER_KEY", env={}
        )
    with pytest.raises(ConfigError, match="not an environment variable name"):
        make_model("openai:x", api_key_env="sk-the-key-itself!", env=SECRETS)


async def test_a_provider_keeps_its_own_key_for_its_own_endpoint() -> None:
    model = make_model("openai:gpt-4.1", env=SECRETS, retry=None)
    assert isinstance(model, OpenAIModel)
    assert str(model._client.base_url).rstrip("/") == OPENAI_URL
    assert model._client.api_key == SECRETS["OPENAI_API_KEY"]
    await model.aclose()
    explicit = make_model("openai:gpt-4.1", base_url=OPENAI_URL + "/", env=SECRETS, retry=None)
    assert isinstance(explicit, OpenAIModel)
    assert explicit._client.api_key == SECRETS["OPENAI_API_KEY"]
    await explicit.aclose()
    claude = make_model("anthropic:claude-test", env=SECRETS, retry=None)
    assert isinstance(claude, AnthropicModel)
    assert str(claude._client.base_url).rstrip("/") == ANTHROPIC_URL
    assert claude._client.api_key == SECRETS["ANTHROPIC_API_KEY"]
    await claude.aclose()
    # A named variable also works for the provider's own endpoint (a second account).
    named = make_model("openai:gpt-4.1", api_key_env="WORK_KEY", env={"WORK_KEY": "w"}, retry=None)
    assert isinstance(named, OpenAIModel)
    assert named._client.api_key == "w"
    await named.aclose()


async def test_the_sdks_own_environment_fallbacks_are_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built directly, the adapters still never send a vendor key to another endpoint."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["OPENAI_API_KEY"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRETS["ANTHROPIC_API_KEY"])
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    async with WireServer(_reply) as server:
        openai_model = OpenAIModel("m", base_url=server.base_url + "/v1")
        anthropic_model = AnthropicModel("c", base_url=server.base_url)
        request = ModelRequest(messages=(UserMessage(text="hi"),))
        for model in (openai_model, anthropic_model):
            _ = [e async for e in model.stream(request)]
            await model.aclose()
        sent = [r.headers.get("x-api-key") or r.headers["authorization"] for r in server.requests]
    assert len(sent) == 2
    assert not any(secret in header for header in sent for secret in SECRETS.values())
    # Without a base URL: the vendor's endpoint, whatever OPENAI_BASE_URL says.
    default = OpenAIModel("m")
    assert str(default._client.base_url).rstrip("/") == OPENAI_URL
    assert default._client.api_key == SECRETS["OPENAI_API_KEY"]
    await default.aclose()


@pytest.mark.parametrize(
    ("url", "home", "same"),
    [
        (None, OPENAI_URL, True),
        ("https://api.openai.com/v1", OPENAI_URL, True),
        ("https://API.OpenAI.com/v1/", OPENAI_URL, True),
        ("https://api.openai.com:443/v1", OPENAI_URL, True),
        ("http://api.openai.com/v1", OPENAI_URL, False),  # the key in clear text
        ("https://api.openai.com.attacker.com/v1", OPENAI_URL, False),
        ("https://api.openai.com:8443/v1", OPENAI_URL, False),
        ("https://user:pw@api.openai.com/v1", OPENAI_URL, False),
        ("https://openrouter.ai/api/v1", OPENROUTER_URL, True),
        ("https://evil.example/api.openai.com", OPENAI_URL, False),
        ("https://api.openai.com:x/v1", OPENAI_URL, False),
    ],
)
def test_same_endpoint(url: str | None, home: str, same: bool) -> None:
    assert same_endpoint(url, home) is same


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:8000",
        "ftp://x/v1",
        "http://",
        "http://x y/v1",
        "http://h:99999/v1",
        "http://u:p@h/v1",
        "http://h/\x00",
    ],
)
def test_check_base_url_refuses_what_is_no_server_address(url: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        check_base_url(url)
    with pytest.raises(ConfigError):
        make_model("openai-compatible:m", base_url=url, env={})


def test_check_base_url_accepts_server_addresses() -> None:
    for url in ("http://localhost:11434/v1", "https://llm.example/v1 ", "http://[::1]:8000/v1"):
        assert check_base_url(url) == url.strip()
