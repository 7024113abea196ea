"""From a ``provider:model`` spec to a ready model.

``openai`` and ``anthropic`` are the vendors' APIs; ``ollama``, ``vllm``, ``lmstudio``,
``llamacpp`` and ``openrouter`` are OpenAI-compatible servers with their usual base URLs;
``openai-compatible`` is any other such server (``--base-url`` required). ``local`` runs a
GGUF model in this process on llama.cpp (``local:gemma-3-270m``, the packaged model, or
``local:PATH.gguf``); it needs the ``local`` extra. ``scripted:`` specs belong to the
testing layer and are not handled here.

Keys go only where they belong (SECURITY.md): ``OPENAI_API_KEY`` only to OpenAI's own
endpoint, ``ANTHROPIC_API_KEY`` only to Anthropic's, ``OPENROUTER_API_KEY`` only to
OpenRouter's. A ``--base-url`` elsewhere (a local server, a proxy, an address that came with
a repository's ``loomkin.toml`` or an HTTP request) gets a key only from a variable the user
names (``--api-key-env VAR``, ``[model] api_key_env``). The SDKs' own fallbacks
(``OPENAI_BASE_URL``, a key read from the environment by the client) are never used: every
client is built with an explicit URL and key.

Each adapter module, and so its vendor SDK, is imported inside :func:`make_model`, only when
a model of that provider is built: importing the ``anthropic`` SDK costs about 2 s of CPU and
``openai`` about 0.5 s, and every CLI command imports this module, most of them to call no
model at all (SPEC §3.13: the CLI starts in well under a second).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import ConfigError, MissingCredentials
from loomkin.llm.profiles import (
    ANTHROPIC_URL,
    LLAMACPP_PROFILE,
    OPENAI_URL,
    OPENROUTER_URL,
    check_base_url,
    same_endpoint,
)
from loomkin.llm.retry import DEFAULT_RETRY_POLICY, OnRetry, RetryingModel, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.llm.model import Model

__all__ = ["KNOWN_PROVIDERS", "LOCAL_HINT", "check_key_env", "make_model", "parse_model_spec"]

_LOCAL_KEY = "loomkin-local"
"""Sent where no key goes: local servers ignore the key, but the SDK insists on one."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Provider:
    url: str | None
    """The provider's own endpoint (a local server's usual address; ``None``: none)."""
    key_env: str | None
    """The variable holding the key for :attr:`url` only; ``None`` for servers that need none."""


_PROVIDERS: Mapping[str, _Provider] = {
    "openai": _Provider(url=OPENAI_URL, key_env="OPENAI_API_KEY"),
    "anthropic": _Provider(url=ANTHROPIC_URL, key_env="ANTHROPIC_API_KEY"),
    "ollama": _Provider(url="http://localhost:11434/v1", key_env=None),
    "vllm": _Provider(url="http://localhost:8000/v1", key_env=None),
    "lmstudio": _Provider(url="http://localhost:1234/v1", key_env=None),
    "llamacpp": _Provider(url="http://localhost:8080/v1", key_env=None),
    "openrouter": _Provider(url=OPENROUTER_URL, key_env="OPENROUTER_API_KEY"),
    "openai-compatible": _Provider(url=None, key_env=None),
}

KNOWN_PROVIDERS = (*_PROVIDERS, "local")

LOCAL_HINT = "local:gemma-3-270m (after `pip install 'loomkin[local]'`)"
"""How to run without a key or a server: the packaged model, in this process."""


def parse_model_spec(spec: str) -> tuple[str, str]:
    """Split ``"provider:model"`` into its two halves (the model may contain ``:``).

    Raises:
        ConfigError: The spec is malformed or names an unknown provider.
    """
    provider, sep, model = spec.strip().partition(":")
    if not sep or not provider or not model:
        raise ConfigError(
            f"model spec {_shown(spec)!r} must look like 'provider:model', e.g. "
            "'openai:gpt-4.1' or 'anthropic:claude-sonnet-4-5'"
        )
    provider = provider.lower()
    if provider not in KNOWN_PROVIDERS:
        raise ConfigError(
            f"unknown model provider {_shown(provider)!r} in {_shown(spec)!r}; known providers: "
            f"{', '.join(KNOWN_PROVIDERS)}"
        )
    return provider, model


def make_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    env: Mapping[str, str] = os.environ,
    timeout: float = 120.0,
    retry: RetryPolicy | None = DEFAULT_RETRY_POLICY,
    on_retry: OnRetry | None = None,
) -> Model:
    """Build the model for ``spec``, wrapped in the retry policy.

    A key goes only to the endpoint it belongs to: a provider's own variable
    (``OPENAI_API_KEY``...) only to that provider's own endpoint, never to a ``base_url``
    elsewhere. Any other endpoint gets a key only from the variable the user names with
    ``api_key_env`` (``--api-key-env``, ``[model] api_key_env``); without one it gets a
    placeholder, which local servers ignore.

    Args:
        spec: ``"provider:model"``.
        base_url: An OpenAI-compatible server to use instead of the provider's default.
        api_key_env: The variable holding the key for this endpoint (whatever it is).
        env: Where API keys are read from.
        timeout: Seconds to wait for the server.
        retry: The retry policy (``None``: no retries, the bare adapter).
        on_retry: Called before every retry of every call on this model (see
            :data:`~loomkin.llm.retry.OnRetry`); each call's own stream also announces its
            retries with :class:`~loomkin.llm.model.RetryNotice`.

    Raises:
        ConfigError: A malformed spec or base URL, an unknown provider, a missing
            ``--base-url``, or an invalid variable name.
        MissingCredentials: No API key; the message says which variable to set.
    """
    provider, name = parse_model_spec(spec)
    if base_url is not None:
        try:
            base_url = check_base_url(base_url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    model: Model
    # The adapters are imported here, not at the top (see the module docstring), and after
    # the key check, so a missing key is reported without first loading the SDK.
    if provider == "local":
        from loomkin.llm.providers.local import LocalModel

        model = LocalModel(name)
        return model if retry is None else RetryingModel(model, policy=retry, on_retry=on_retry)
    server = _PROVIDERS[provider]
    url = base_url or server.url
    if url is None:
        raise ConfigError(
            f"provider {provider!r} needs the server's address: pass --base-url "
            "(e.g. http://localhost:8000/v1)"
        )
    key, key_env = _key(env, server, provider, url=url, api_key_env=api_key_env)
    if provider == "anthropic":
        from loomkin.llm.providers.anthropic import AnthropicModel

        model = AnthropicModel(name, api_key=key, base_url=url, key_env=key_env, timeout=timeout)
    else:
        from loomkin.llm.providers.openai import OpenAIModel

        # llama.cpp's quirks whatever its port; the others: picked from the URL and model.
        profile = LLAMACPP_PROFILE if provider == "llamacpp" else None
        model = OpenAIModel(
            name,
            api_key=key,
            base_url=url,
            key_env=key_env,
            timeout=timeout,
            provider=provider,
            profile=profile,
        )
    return model if retry is None else RetryingModel(model, policy=retry, on_retry=on_retry)


def check_key_env(name: str) -> str:
    """Return ``name`` if it can be an environment variable's name, else raise ``ConfigError``."""
    if not _ENV_NAME.match(name):
        raise ConfigError(
            f"{_shown(name)!r} is not an environment variable name (letters, digits and '_', "
            "not starting with a digit); pass the variable's name, not the key itself"
        )
    return name


def _key(
    env: Mapping[str, str],
    server: _Provider,
    provider: str,
    *,
    url: str,
    api_key_env: str | None,
) -> tuple[str, str | None]:
    """The key to send to ``url`` and the variable it came from (``None``: no key)."""
    if api_key_env is not None:
        var = check_key_env(api_key_env)
        key = env.get(var, "").strip()
        if not key:
            raise MissingCredentials(
                f"the key for {_shown(url)} should be in ${var} (--api-key-env), but {var} "
                "is not set or empty"
            )
        return key, var
    home = server.url
    if server.key_env is None or home is None or not same_endpoint(url, home):
        # Not the provider's own endpoint: its key must not go there. A server that needs a
        # key gets one only from a variable the user names (--api-key-env).
        return _LOCAL_KEY, None
    key = env.get(server.key_env, "").strip()
    if key:
        return key, server.key_env
    raise MissingCredentials(
        f"no API key for {provider!r}: set the {server.key_env} environment variable, or use "
        "--base-url with a local OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM "
        f"Studio), or run a model offline with --model {LOCAL_HINT}, or run `loomkin demo` to "
        "see Loomkin work without a key"
    )


def _shown(text: str, limit: int = 120) -> str:
    """``text`` cut for an error message (a 5,000-character value must not flood it)."""
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
