"""From a ``provider:model`` spec to a ready model.

``openai`` and ``anthropic`` are the vendors' APIs; ``ollama``, ``vllm``, ``lmstudio``,
``llamacpp`` and ``openrouter`` are OpenAI-compatible servers with their usual base URLs;
``openai-compatible`` is any other such server (``--base-url`` required). ``local`` runs a
GGUF model in this process on llama.cpp (``local:gemma-3-270m``, the packaged model, or
``local:PATH.gguf``); it needs the ``local`` extra. ``scripted:`` specs belong to the
testing layer and are not handled here.

Each adapter module, and so its vendor SDK, is imported inside :func:`make_model`, only when
a model of that provider is built: importing the ``anthropic`` SDK costs about 2 s of CPU and
``openai`` about 0.5 s, and every CLI command imports this module, most of them to call no
model at all (SPEC §3.13: the CLI starts in well under a second).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import ConfigError, MissingCredentials
from loomkin.llm.profiles import LLAMACPP_PROFILE
from loomkin.llm.retry import DEFAULT_RETRY_POLICY, OnRetry, RetryingModel, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.llm.model import Model
    from loomkin.llm.providers.openai import OpenAIModel

__all__ = ["KNOWN_PROVIDERS", "LOCAL_HINT", "make_model", "parse_model_spec"]

_LOCAL_KEY = "loomkin-local"
"""Local OpenAI-compatible servers ignore the key, but the SDK insists on one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Compatible:
    base_url: str | None
    key_env: str | None
    """Variable holding the key; ``None`` for servers that need none."""


_COMPATIBLE: Mapping[str, _Compatible] = {
    "ollama": _Compatible(base_url="http://localhost:11434/v1", key_env=None),
    "vllm": _Compatible(base_url="http://localhost:8000/v1", key_env=None),
    "lmstudio": _Compatible(base_url="http://localhost:1234/v1", key_env=None),
    "llamacpp": _Compatible(base_url="http://localhost:8080/v1", key_env=None),
    "openrouter": _Compatible(
        base_url="https://openrouter.ai/api/v1", key_env="OPENROUTER_API_KEY"
    ),
    "openai-compatible": _Compatible(base_url=None, key_env=None),
}

KNOWN_PROVIDERS = ("openai", "anthropic", *_COMPATIBLE, "local")

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
            f"model spec {spec!r} must look like 'provider:model', e.g. 'openai:gpt-4.1' or "
            "'anthropic:claude-sonnet-4-5'"
        )
    provider = provider.lower()
    if provider not in KNOWN_PROVIDERS:
        raise ConfigError(
            f"unknown model provider {provider!r} in {spec!r}; known providers: "
            f"{', '.join(KNOWN_PROVIDERS)}"
        )
    return provider, model


def make_model(
    spec: str,
    *,
    base_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    timeout: float = 120.0,
    retry: RetryPolicy | None = DEFAULT_RETRY_POLICY,
    on_retry: OnRetry | None = None,
) -> Model:
    """Build the model for ``spec``, wrapped in the retry policy.

    Args:
        spec: ``"provider:model"``.
        base_url: An OpenAI-compatible server to use instead of the provider's default.
        env: Where API keys are read from.
        timeout: Seconds to wait for the server.
        retry: The retry policy (``None``: no retries, the bare adapter).
        on_retry: Called before every retry of every call on this model (see
            :data:`~loomkin.llm.retry.OnRetry`); each call's own stream also announces its
            retries with :class:`~loomkin.llm.model.RetryNotice`.

    Raises:
        ConfigError: A malformed spec, an unknown provider, or a missing ``--base-url``.
        MissingCredentials: No API key; the message says which variable to set.
    """
    provider, name = parse_model_spec(spec)
    model: Model
    # The adapters are imported here, not at the top (see the module docstring), and after
    # the key check, so a missing key is reported without first loading the SDK.
    if provider == "anthropic":
        key = _key(env, "ANTHROPIC_API_KEY", provider, base_url=None)
        from loomkin.llm.providers.anthropic import AnthropicModel

        model = AnthropicModel(name, api_key=key, base_url=base_url, timeout=timeout)
    elif provider == "openai":
        key = _key(env, "OPENAI_API_KEY", provider, base_url=base_url)
        from loomkin.llm.providers.openai import OpenAIModel

        model = OpenAIModel(name, api_key=key, base_url=base_url, timeout=timeout)
    elif provider == "local":
        from loomkin.llm.providers.local import LocalModel

        model = LocalModel(name)
    else:
        model = _compatible(provider, name, base_url=base_url, env=env, timeout=timeout)
    return model if retry is None else RetryingModel(model, policy=retry, on_retry=on_retry)


def _compatible(
    provider: str, name: str, *, base_url: str | None, env: Mapping[str, str], timeout: float
) -> OpenAIModel:
    server = _COMPATIBLE[provider]
    url = base_url or server.base_url
    if url is None:
        raise ConfigError(
            f"provider {provider!r} needs the server's address: pass --base-url "
            "(e.g. http://localhost:8000/v1)"
        )
    key = _key(env, server.key_env, provider, base_url=base_url) if server.key_env else _LOCAL_KEY
    from loomkin.llm.providers.openai import OpenAIModel

    profile = LLAMACPP_PROFILE if provider == "llamacpp" else None  # whatever its port
    return OpenAIModel(
        name, api_key=key, base_url=url, timeout=timeout, provider=provider, profile=profile
    )


def _key(env: Mapping[str, str], var: str, provider: str, *, base_url: str | None) -> str:
    key = env.get(var, "").strip()
    if key:
        return key
    if base_url is not None:
        return _LOCAL_KEY  # a local server at --base-url needs no key
    raise MissingCredentials(
        f"no API key for {provider!r}: set the {var} environment variable, or use --base-url "
        "with a local OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio), or run a "
        f"model offline with --model {LOCAL_HINT}, or run `loomkin demo` to see Loomkin work "
        "without a key"
    )
