"""``python -m loomkin.bench cost``: the JSON contract, and the figures the issue holds us to."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from loomkin.bench.__main__ import main
from loomkin.bench.cost import Tally, cost_table

if TYPE_CHECKING:
    import pytest

FIELDS = {
    "single_agent_billed_tokens",
    "team_billed_tokens",
    "team_vs_single",
    "cache_hit_fraction",
    "max_tool_schema_tokens",
    "mean_input_tokens_per_call",
    "context_overflows",
    "makespan_single_s",
    "makespan_team_s",
}


def test_the_command_prints_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    # A small window makes the agent working alone compact its context on the way.
    assert main(["cost", "--scale", "0.001", "--window", "8000", "--no-demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= FIELDS
    assert report["context_overflows"] == 0
    assert report["single"]["compactions"] >= 1
    assert report["max_tool_schema_tokens"] <= 4000
    assert 0 < report["cache_hit_fraction"] <= 1
    assert report["team"]["model_calls"] > report["single"]["model_calls"]
    assert "team_vs_single" in cost_table(report)
    assert report["team"]["notice_tokens"] > 0  # briefs and task notices are measured
    assert report["team"]["repeated_notice_tokens"] == 0


def test_bad_flags_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--scale", "0", "--no-demo"]) == 2
    assert "--scale" in capsys.readouterr().err


def test_billing_reads_the_shared_prefix_at_a_tenth_and_writes_the_rest() -> None:
    tally = Tally()
    first = {"messages": [{"kind": "user", "text": "x" * 4000, "source": "user"}], "tools": []}
    second = {
        "messages": [*first["messages"], {"kind": "user", "text": "y" * 400, "source": "user"}],
        "tools": [],
    }
    tally.add_request("a", first, 128_000)
    tally.add_request("a", second, 128_000)
    tally.add_request("b", first, 128_000)  # another agent: its own cache
    assert tally.calls == 3
    assert tally.cached_tokens > 990  # the first request, read back by the second
    written = tally.input_tokens - tally.cached_tokens
    assert round(tally.billed_tokens) == round(0.1 * tally.cached_tokens + 1.25 * written)
