"""The command line: help, clear errors for bad input, and the agent controls' plumbing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from loomkin.cli.control import read_server_info, write_server_info
from loomkin.cli.main import cli
from loomkin.errors import NotFound, UserError

if TYPE_CHECKING:
    from pathlib import Path


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "demo", "serve", "resume", "agent"):
        assert command in result.output
    agent = CliRunner().invoke(cli, ["agent", "--help"])
    for action in ("pause", "resume", "steer", "cancel", "inspect"):
        assert action in agent.output


def test_run_without_a_model_says_how_to_proceed(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "do it", "--project", str(tmp_path)], env={})
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "no model given" in text
    assert "--base-url" in text
    assert "loomkin demo" in text


def test_run_with_a_missing_key_names_the_variable(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["run", "do it", "--project", str(tmp_path), "--model", "openai:gpt-4.1"],
        env={"OPENAI_API_KEY": ""},
    )
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output
    assert "Traceback" not in result.output


def test_run_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "loomkin.toml").write_text("[limits]\nmax_iteratons = 3\n")
    result = CliRunner().invoke(
        cli, ["run", "do it", "--project", str(tmp_path), "--model", "openai:gpt-4.1"]
    )
    assert result.exit_code == 2
    assert "max_iteratons" in result.output


def test_run_on_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "x", "--project", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "nope" in result.output


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    command = ["serve", "--demo", "--project", str(tmp_path / "p"), "--host", "0.0.0.0"]
    result = CliRunner().invoke(cli, [*command, "--no-token"], env={})
    assert result.exit_code == 2
    assert "--no-token is for loopback addresses only" in result.output
    assert not (tmp_path / "p").exists()


def test_agent_commands_without_a_server_explain_how_to_start_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["agent", "pause", "alice", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "loomkin serve" in " ".join(result.output.split())


def test_server_info_round_trip_is_private_to_the_owner(tmp_path: Path) -> None:
    path = write_server_info(
        tmp_path, url="http://127.0.0.1:9/?token=t", session_id="s1", token="t"
    )
    assert path.stat().st_mode & 0o077 == 0
    info = read_server_info(tmp_path)
    assert (info.url, info.session_id, info.token) == ("http://127.0.0.1:9", "s1", "t")


def test_server_info_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no running Loomkin server"):
        read_server_info(tmp_path)
    (tmp_path / ".loomkin").mkdir()
    (tmp_path / ".loomkin" / "server.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_server_info(tmp_path)
    (tmp_path / ".loomkin" / "server.json").write_text(json.dumps({"url": "x"}))
    with pytest.raises(UserError, match="does not describe a server"):
        read_server_info(tmp_path)


async def test_without_a_terminal_permission_prompts_are_denied_with_a_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from loomkin.cli.sessions import ask_in_terminal as _ask_in_terminal
    from loomkin.service import PendingPermission

    prompt = PendingPermission(
        request_id="p1",
        agent_id="agent_1",
        agent="alice",
        tool="shell",
        category="execute",
        arguments={"command": "make"},
        target="make",
    )
    decision = await _ask_in_terminal()(prompt)
    assert decision == "deny"
    out = " ".join(capsys.readouterr().out.split())
    assert "no terminal to ask" in out
    assert "--yes" in out


def test_inspect_shows_an_agents_tool_calls_by_name_not_as_a_repr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from loomkin.cli.main import _show_snapshot

    call = {"call_id": "call_01", "name": "task_create", "arguments": '{"title": "Add farewell()"}'}
    messages = [
        {"kind": "user", "text": "add farewell()"},
        {"kind": "assistant", "text": "", "tool_calls": [call]},
        {"kind": "assistant", "text": "Two steps.", "tool_calls": [call, {**call, "name": "x"}]},
    ]
    _show_snapshot({"snapshot": {"name": "ann", "messages": messages}})
    out = capsys.readouterr().out
    assert "user: add farewell()" in out
    assert 'assistant: task_create({"title": "Add farewell()"})\n' in out
    assert 'assistant: Two steps. → task_create({"title": "Add farewell()"}), x(' in out
    assert "call_id" not in out
    assert "{'" not in out


@pytest.mark.parametrize(
    ("interrupted", "said"),
    [
        (None, ""),  # a worker: it says itself that it handed its sessions over
        ("", "interrupted\n"),  # cluster status: nothing to resume
        ("the session goes on", "interrupted; the session goes on\n"),
    ],
)
def test_what_a_command_says_when_it_is_interrupted_is_its_own(
    capsys: pytest.CaptureFixture[str], interrupted: str | None, said: str
) -> None:
    import asyncio

    from loomkin.cli.common import run_command

    async def stopped() -> int:
        raise asyncio.CancelledError  # as SIGTERM or Ctrl-C cancels the command

    with pytest.raises(SystemExit) as exited:
        run_command(stopped(), interrupted=interrupted)
    assert exited.value.code == 130
    assert capsys.readouterr().out == said


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    import click

    def options(command: click.Command, path: str) -> list[str]:
        found = [
            f"{path} {param.opts[0]}"
            for param in command.params
            if isinstance(param, click.Option) and not param.hidden and not param.help
        ]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                if not sub.hidden:
                    found += options(sub, f"{path} {name}")
        return found

    assert options(cli, "loomkin") == []


def test_counts_read_as_a_person_writes_them() -> None:
    from loomkin.cli.common import counted

    assert [counted(n, "session") for n in (0, 1, 2)] == ["0 sessions", "1 session", "2 sessions"]
