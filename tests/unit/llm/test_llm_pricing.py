import pytest

from loomkin.errors import ConfigError
from loomkin.llm.pricing import Price, PriceTable


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai:gpt-4.1", 2.0 + 8.0),
        ("gpt-4.1", 2.0 + 8.0),
        ("openai:gpt-4.1-mini", 0.4 + 1.6),
        ("openai:gpt-4.1-2025-04-14", 2.0 + 8.0),
        ("openai:gpt-4o-mini", 0.15 + 0.6),
        ("openai:o4-mini", 1.1 + 4.4),
        ("anthropic:claude-sonnet-4-5-20250929", 3.0 + 15.0),
        ("anthropic:claude-opus-4-1", 15.0 + 75.0),
        ("anthropic:claude-haiku-4-5", 1.0 + 5.0),
        ("openrouter:anthropic/claude-sonnet-4-5", 3.0 + 15.0),
    ],
)
def test_known_models_cost_list_price(name: str, expected: float) -> None:
    assert PriceTable().cost(name, 1_000_000, 1_000_000) == pytest.approx(expected)


@pytest.mark.parametrize(
    "name",
    [
        "ollama:gpt-4.1",
        "scripted:demo",
        "local:gemma",
        "openai:my-finetune",
        "vllm:qwen",
        "gpt-4.10",
    ],
)
def test_local_fake_and_unknown_models_are_free(name: str) -> None:
    assert PriceTable().cost(name, 10_000, 10_000) == 0.0


def test_cost_is_per_million_tokens() -> None:
    table = PriceTable({"m": Price(input_per_mtok=2.0, output_per_mtok=10.0)})
    assert table.cost("x:m", 500, 100) == pytest.approx((500 * 2 + 100 * 10) / 1e6)


def test_config_overrides_and_extends() -> None:
    table = PriceTable.from_config(
        {"gpt-4.1": {"input": 1.0, "output": 2.0}, "my-model": {"input": 0, "output": 1}}
    )
    assert table.cost("openai:gpt-4.1", 1_000_000, 0) == 1.0
    assert table.cost("openai:my-model", 0, 1_000_000) == 1.0
    assert table.cost("openai:gpt-4o", 1_000_000, 0) == 2.5


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (3.0, "must be a table"),
        ({"input": 1.0}, "'gpt-4.1'.output must be a non-negative number"),
        ({"input": -1, "output": 1}, "'gpt-4.1'.input"),
        ({"input": True, "output": 1}, "'gpt-4.1'.input"),
        ({"input": 1, "output": 1, "cached": 0.1}, "unknown keys"),
    ],
)
def test_bad_config_names_the_entry(entry: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        PriceTable.from_config({"gpt-4.1": entry})  # type: ignore[dict-item]
