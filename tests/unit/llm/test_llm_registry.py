import importlib.util
import json
import subprocess
import sys

import pytest

from loomkin.errors import ConfigError, MissingCredentials
from loomkin.llm.profiles import (
    GENERIC_PROFILE,
    LLAMACPP_PROFILE,
    OPENAI_PROFILE,
    OPENROUTER_PROFILE,
    profile_for,
)
from loomkin.llm.providers.anthropic import AnthropicModel
from loomkin.llm.providers.openai import OpenAIModel
from loomkin.llm.registry import make_model, parse_model_spec
from loomkin.llm.retry import RetryingModel


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("openai:gpt-4.1", ("openai", "gpt-4.1")),
        ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        ("ollama:llama3.1:8b", ("ollama", "llama3.1:8b")),
        (" OpenRouter:openai/gpt-4.1 ", ("openrouter", "openai/gpt-4.1")),
    ],
)
def test_parse_model_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec", ["gpt-4.1", "openai:", ":gpt-4.1", ""])
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(ConfigError, match="must look like 'provider:model'"):
        parse_model_spec(spec)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown model provider 'gemini'.*openai, anthropic"):
        parse_model_spec("gemini:pro")


@pytest.mark.parametrize(
    ("spec", "var"),
    [
        ("openai:gpt-4.1", "OPENAI_API_KEY"),
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("openrouter:openai/gpt-4.1", "OPENROUTER_API_KEY"),
    ],
)
def test_missing_key_says_what_to_do(spec: str, var: str) -> None:
    with pytest.raises(MissingCredentials) as info:
        make_model(spec, env={})
    message = str(info.value)
    assert f"set the {var} environment variable" in message
    assert "--base-url" in message
    assert "loomkin demo" in message


async def test_make_model_builds_wrapped_adapters() -> None:
    model = make_model("openai:gpt-4.1", env={"OPENAI_API_KEY": "sk-x"})
    assert isinstance(model, RetryingModel)
    assert model.name == "openai:gpt-4.1"
    inner = model.inner
    assert isinstance(inner, OpenAIModel)
    assert inner.profile == OPENAI_PROFILE
    await inner.aclose()

    bare = make_model("anthropic:claude-haiku-4-5", env={"ANTHROPIC_API_KEY": "k"}, retry=None)
    assert isinstance(bare, AnthropicModel)
    await bare.aclose()


async def test_local_servers_need_no_key() -> None:
    ollama = make_model("ollama:llama3.1:8b", env={}, retry=None)
    assert isinstance(ollama, OpenAIModel)
    assert ollama.name == "ollama:llama3.1:8b"
    assert ollama.profile == GENERIC_PROFILE
    await ollama.aclose()

    llamacpp = make_model("llamacpp:gemma", env={}, retry=None)
    assert isinstance(llamacpp, OpenAIModel)
    assert llamacpp.profile == LLAMACPP_PROFILE
    await llamacpp.aclose()

    custom = make_model("openai:qwen", base_url="http://127.0.0.1:9/v1", env={}, retry=None)
    assert isinstance(custom, OpenAIModel)
    assert custom.profile == GENERIC_PROFILE
    await custom.aclose()


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(ConfigError, match="--base-url"):
        make_model("openai-compatible:qwen", env={})


def test_local_provider_explains_the_extra_or_the_model() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        match = r"pip install 'loomkin\[local\]'"
    else:
        match = r"unknown local model 'gemma': use 'local:gemma-3-270m' or 'local:PATH.gguf'"
    with pytest.raises(ConfigError, match=match):
        make_model("local:gemma", env={})


def test_missing_key_offers_the_local_model() -> None:
    with pytest.raises(MissingCredentials, match="--model local:gemma-3-270m"):
        make_model("openai:gpt-4.1", env={})


@pytest.mark.parametrize(
    ("base_url", "model", "expected"),
    [
        (None, "gpt-4.1", OPENAI_PROFILE),
        ("https://api.openai.com/v1", "gpt-4o", OPENAI_PROFILE),
        ("https://openrouter.ai/api/v1", "x", OPENROUTER_PROFILE),
        ("http://localhost:8080/v1", "gemma", LLAMACPP_PROFILE),
        ("http://localhost:11434/v1", "llama3", GENERIC_PROFILE),
        ("not a url", "m", GENERIC_PROFILE),
    ],
)
def test_profile_for(base_url: str | None, model: str, expected: object) -> None:
    assert profile_for(base_url, model) == expected


def test_reasoning_models_take_no_temperature() -> None:
    assert not profile_for(None, "o3").supports_temperature
    assert not profile_for(None, "o4-mini").supports_temperature
    assert profile_for(None, "gpt-4.1").supports_temperature


def _loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return which provider SDKs it imported."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in ('anthropic', 'openai', 'llama_cpp') "
        "if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_importing_the_llm_layer_imports_no_provider_sdk() -> None:
    assert _loaded_after("import loomkin.llm, loomkin.llm.registry, loomkin.llm.retry") == []


def test_building_a_model_imports_only_its_providers_sdk() -> None:
    built = (
        "from loomkin.llm import make_model\n"
        "make_model('anthropic:claude-haiku-4-5', env={'ANTHROPIC_API_KEY': 'k'})"
    )
    assert _loaded_after(built) == ["anthropic"]
    compatible = "from loomkin.llm import make_model\nmake_model('ollama:llama3', env={})"
    assert _loaded_after(compatible) == ["openai"]
    missing_key = (
        "from loomkin.llm import make_model\n"
        "try:\n    make_model('anthropic:claude-haiku-4-5', env={})\n"
        "except Exception as exc:\n    assert 'ANTHROPIC_API_KEY' in str(exc)"
    )
    assert _loaded_after(missing_key) == []


async def test_make_model_passes_on_retry_to_the_wrapper() -> None:
    def on_retry(attempt: int, error: object, delay: float) -> None:
        raise AssertionError("no call is made in this test")

    model = make_model("ollama:llama3", env={}, on_retry=on_retry)
    assert isinstance(model, RetryingModel)
    assert model.on_retry is on_retry
    assert isinstance(model.inner, OpenAIModel)
    await model.inner.aclose()
