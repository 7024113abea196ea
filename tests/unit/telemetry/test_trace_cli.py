"""``loomkin trace export``, ``run``/``demo --otlp`` and ``loomkin cost`` on a real session.

The demo (a scripted model on a sample project, no key) gives a real session log; the trace
exported live while it runs must be the trace exported from the log afterwards, span for span.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from test_telemetry_export import _Receiver

from loomkin.cli.main import cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def collector() -> Iterator[_Receiver]:
    r = _Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def file_spans(path: Path) -> list[dict[str, object]]:
    spans: list[dict[str, object]] = []
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                spans.extend(scope["spans"])
    return spans


def test_demo_traced_live_equals_the_trace_exported_afterwards(
    tmp_path: Path, collector: _Receiver
) -> None:
    project = tmp_path / "p"
    out = invoke("demo", "--project", str(project), "--pace", "0", "--otlp", collector.url)
    live = collector.spans()
    assert f"{len(live)} spans sent to {collector.url}" in " ".join(out.split())
    exported = invoke("trace", "export", "--project", str(project), "--file", str(tmp_path / "t"))
    after = file_spans(tmp_path / "t")
    assert f"{len(after)} spans sent to" in " ".join(exported.split())
    assert len(live) == len(after) > 20
    # Same ids (derived from the log), same names, same parents: one trace, exported twice.
    assert {(s.span_id.hex(), s.name, s.parent_span_id.hex()) for s in live} == {
        (str(s["spanId"]), str(s["name"]), str(s.get("parentSpanId", ""))) for s in after
    }
    names = {s.name for s in live}
    assert any(n.startswith("invoke_agent ") for n in names)
    assert any(n.startswith("execute_tool ") for n in names)


def test_otlp_alone_sends_where_the_standard_variables_say(
    tmp_path: Path, collector: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=loomkin-test")
    out = invoke("demo", "--project", str(tmp_path / "p"), "--pace", "0", "--otlp")
    assert "OTEL_EXPORTER_OTLP_*" in " ".join(out.split())
    assert collector.spans()
    assert collector.headers[0]["x-tenant"] == "loomkin-test"


def test_trace_export_names_a_missing_session_and_a_bad_url(tmp_path: Path) -> None:
    project = tmp_path / "p"
    invoke("demo", "--project", str(project), "--pace", "0")
    runner = CliRunner()
    missing = runner.invoke(cli, ["trace", "export", "nope", "--project", str(project)])
    assert missing.exit_code == 2
    assert "no session 'nope' in this store" in missing.output
    bad = runner.invoke(cli, ["trace", "export", "--project", str(project), "--otlp", "ftp://x"])
    assert bad.exit_code == 2
    assert "must be an http(s) URL" in bad.output


def test_cost_by_agent_and_by_team(tmp_path: Path) -> None:
    project = tmp_path / "p"
    summary = invoke("demo", "--project", str(project), "--pace", "0")
    spend = json.loads(invoke("cost", "--project", str(project), "--json"))
    agents, teams = spend["agents"], spend["teams"]
    assert {a["name"] for a in agents} == {"concierge", "orienter", "alice", "bob", "tess"}
    assert {t["name"] for t in teams} == {"root", "greeters"}
    for key in ("model_calls", "input_tokens", "output_tokens"):
        assert sum(a[key] for a in agents) == sum(t[key] for t in teams) == spend[key]
    # The demo's own summary counts the same calls and tokens.
    flat = " ".join(summary.split())
    assert f"model calls: {spend['model_calls']}, tokens: {spend['input_tokens']} in" in flat
    greeters = next(t for t in teams if t["name"] == "greeters")
    assert greeters["agents"] == 3
    table = invoke("cost", spend["session_id"], "--project", str(project))
    assert "greeters" in table
    assert "total" in table
    # Cached and uncached input apart (the fake models simulate a provider's prompt cache).
    assert "prompt cache" in table
    assert "uncached" in table
    assert 0 < spend["cached_input_tokens"] < spend["input_tokens"]
    assert spend["cached_input_tokens"] + spend["uncached_input_tokens"] == spend["input_tokens"]
    assert f"({spend['cached_input_tokens']} cached)" in flat
