"""``loomkin speculation ...``: the requests it sends and its errors (the server is faked).

The routes themselves are tested in ``tests/unit/api/test_api_speculation.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from click.testing import CliRunner

from loomkin.cli import speculation as cli_speculation
from loomkin.cli.control import ServerInfo
from loomkin.cli.main import cli
from loomkin.errors import UserError

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _fake(monkeypatch: pytest.MonkeyPatch, sent: list[tuple[str, str, object]]) -> None:
    info = ServerInfo(url="http://127.0.0.1:1", session_id="s1", token="t")
    monkeypatch.setattr(cli_speculation, "read_server_info", lambda _p: info)

    def call(_info: ServerInfo, method: str, path: str, body: object = None) -> dict[str, object]:
        sent.append((method, path, body))
        if path.endswith("/tasks/missing/speculation/cancel"):
            raise UserError("the server refused (404): task 'missing' has no running speculation")
        return {"ok": True}

    monkeypatch.setattr(cli_speculation, "call", call)


def test_start_sends_structured_and_prose_assumptions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sent: list[tuple[str, str, object]] = []
    _fake(monkeypatch, sent)
    args = [
        "speculation", "start", "task_1", "--agent", "bob", "--project", str(tmp_path),
        "--assume", "signature=def parse(text) -> Ast", "--assume", "count=3",
        "--assume-text", "the parser returns a list", "--on", "task_0",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    ((method, path, body),) = sent
    assert (method, path) == ("POST", "/api/sessions/s1/tasks/task_1/speculate")
    assert body == {
        "agent": "bob",
        "assumptions": [
            {"key": "signature", "value": "def parse(text) -> Ast", "on_task": "task_0"},
            {"key": "count", "value": 3, "on_task": "task_0"},
            {"text": "the parser returns a list", "on_task": "task_0"},
        ],
    }


def test_bad_input_and_server_refusals_are_clear(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sent: list[tuple[str, str, object]] = []
    _fake(monkeypatch, sent)
    runner = CliRunner()
    bad = runner.invoke(cli, ["speculation", "start", "t", "--agent", "bob", "--assume", "novalue"])
    assert bad.exit_code != 0
    assert "--assume wants KEY=VALUE" in bad.output
    none = runner.invoke(cli, ["speculation", "start", "t", "--agent", "bob"])
    assert "at least one" in none.output
    missing = runner.invoke(cli, ["speculation", "cancel", "missing", "--project", str(tmp_path)])
    assert missing.exit_code != 0
    assert "no running speculation" in missing.output
    listed = runner.invoke(cli, ["speculation", "list", "--project", str(tmp_path)])
    assert listed.exit_code == 0
    assert sent[-1] == ("GET", "/api/sessions/s1/speculations", None)


def test_list_is_readable_text_or_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sent: list[tuple[str, str, object]] = []
    _fake(monkeypatch, sent)
    runner = CliRunner()
    text = runner.invoke(cli, ["speculation", "list", "--project", str(tmp_path)])
    assert text.output.strip() == "no speculation yet"
    raw = runner.invoke(cli, ["speculation", "list", "--json", "--project", str(tmp_path)])
    assert json.loads(raw.output) == {"ok": True}
