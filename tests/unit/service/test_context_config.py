"""Issue #22 in loomkin.toml: [context] windows and compaction, [pricing] cache prices."""

from __future__ import annotations

import pytest

from loomkin.errors import ConfigError
from loomkin.llm.windows import DEFAULT_WINDOW, context_window
from loomkin.service.config import parse_config
from loomkin.service.options import session_options


def test_context_keys_reach_the_session_settings() -> None:
    config = parse_config(
        """
[context]
window_tokens = 64000
compact_at = 0.9
compact_to = 0.6
keep_turns = 6
summarise = false
windows = { "openai:my-model" = 32000 }
"""
    )
    context = session_options(config).settings.context
    assert context.window_tokens == 64000
    assert (context.compact_at, context.compact_to, context.keep_turns) == (0.9, 0.6, 6)
    assert context.summarise is False
    assert context.windows == {"openai:my-model": 32000}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[context]\nwindow_tokens = 0", "context.window_tokens"),
        ("[context]\ncompact_at = 1.5", "context.compact_at"),
        ("[context]\nkeep_turns = '4'", "context.keep_turns"),
        ("[context]\nwindow = 1000", "context.window"),
        (
            '[pricing."x:y"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n'
            "cached_input_per_mtok = -1",
            "cached_input_per_mtok",
        ),
    ],
)
def test_bad_values_are_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        parse_config(text)


def test_cache_prices_from_the_config_and_the_vendor_ratio_by_default() -> None:
    config = parse_config(
        """
[pricing."anthropic:claude-sonnet-4-5"]
input_per_mtok = 4.0
output_per_mtok = 20.0

[pricing."openai:my-finetune"]
input_per_mtok = 3.0
output_per_mtok = 12.0
cached_input_per_mtok = 0.3
"""
    )
    prices = session_options(config).prices
    sonnet = prices.price("anthropic:claude-sonnet-4-5")
    assert sonnet is not None
    # Anthropic's ratios carry over to the new input price: 0.1 x reads, 1.25 x writes.
    assert sonnet.cached_input_per_mtok == pytest.approx(0.4)
    assert sonnet.cache_write_per_mtok == pytest.approx(5.0)
    tuned = prices.price("openai:my-finetune")
    assert tuned is not None
    assert tuned.cached_input_per_mtok == 0.3
    assert prices.cost("openai:my-finetune", 1_000_000, 0, cached_input_tokens=1_000_000) == 0.3


def test_windows_by_model_family_and_override() -> None:
    assert context_window("anthropic:claude-sonnet-4-5-20250929") == 200_000
    assert context_window("openai:gpt-4o-mini") == 128_000
    assert context_window("scripted:x") == DEFAULT_WINDOW
    assert context_window("openai:gpt-4o", {"openai:gpt-4o": 1000}) == 1000
    assert context_window("ollama:qwen2.5-coder", {"qwen2.5": 32_000}) == 32_000
