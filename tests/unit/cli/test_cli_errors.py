"""Every bad input to the CLI is a short error line (exit 2), never a traceback."""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from loomkin.cli.control import read_server_info, remove_server_info, write_server_info
from loomkin.cli.main import cli
from loomkin.errors import UserError

if TYPE_CHECKING:
    from pathlib import Path


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **(env or {})})
    # An exception that escaped would be result.exception (CliRunner prints no traceback).
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    return result


def test_a_port_in_use_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = invoke("serve", "--demo", "--project", str(tmp_path / "p"), "--port", port)
    assert f"error: cannot listen on '127.0.0.1' port {port}:" in result.output
    assert "in use" in result.output
    assert not (tmp_path / "p").exists()  # no demo copied, no session stored

    (tmp_path / "q").mkdir()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        args = ["run", "x", "--project", str(tmp_path / "q"), "--model", "ollama:x"]
        result = invoke(*args, "--serve", port)
    assert "cannot listen" in result.output
    assert not (tmp_path / "q" / ".loomkin").exists()


@pytest.mark.parametrize("host", ["203.0.113.7", "x" * 300, "bad\x00host"])
def test_a_host_that_cannot_be_listened_on_is_one_line(tmp_path: Path, host: str) -> None:
    result = invoke(
        "serve", "--demo", "--project", str(tmp_path / "p"), "--host", host, "--port", "0"
    )
    assert "error: cannot listen on" in result.output
    assert len(result.output) < 600


def test_port_and_pace_are_checked_before_anything_runs(tmp_path: Path) -> None:
    project = str(tmp_path / "p")
    assert "65535" in invoke("serve", "--demo", "--project", project, "--port", "70000").output
    assert "65535" in invoke("run", "x", "--project", str(tmp_path), "--serve", "-1").output
    for pace in ("inf", "nan", "-1", "1e9"):
        for command in (("demo",), ("serve", "--demo")):
            result = invoke(*command, "--project", project, "--pace", pace)
            assert "--pace" in result.output, (command, pace)
            assert "0 to 60" in result.output
    assert not (tmp_path / "p").exists()


def test_a_deeply_nested_loomkin_toml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "loomkin.toml").write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    result = invoke("run", "x", "--project", str(tmp_path), "--model", "ollama:x")
    assert "nested too deeply" in result.output
    assert "loomkin.toml" in result.output


@pytest.mark.parametrize("command", ["run", "resume", "demo"])
def test_a_very_long_project_is_one_short_line(tmp_path: Path, command: str) -> None:
    long = str(tmp_path / ("a" * 5000))
    args = [command, *(["x"] if command == "run" else []), "--project", long]
    result = invoke(*args, "--model", "ollama:x") if command != "demo" else invoke(*args)
    assert "--project" in result.output
    assert "too long" in result.output
    assert len(result.output) < 1000


def test_user_text_in_error_lines_is_not_markup(tmp_path: Path) -> None:
    result = invoke("run", "x", "--project", str(tmp_path), "--model", "[local]:m:[/]")
    assert "[local]:m:[/]" in result.output  # no emoji, no style, no markup error
    assert "Ⓜ" not in result.output


def test_bad_model_options_are_one_line(tmp_path: Path) -> None:
    base = ["run", "x", "--project", str(tmp_path), "--model", "openai-compatible:m"]
    bad_var = invoke(*base, "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "sk-1!")
    assert "not an environment variable name" in bad_var.output
    unset = invoke(*base, "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "NOPE_KEY")
    assert "NOPE_KEY" in unset.output
    bad_url = invoke(*base, "--base-url", "localhost:8000")
    assert "http://host:port/v1" in bad_url.output


def test_serve_option_conflicts(tmp_path: Path) -> None:
    project = str(tmp_path / "p")
    both = invoke("serve", "--demo", "--project", project, "--no-token", "--token", "abc")
    assert "exclude each other" in both.output
    bad_token = invoke("serve", "--demo", "--project", project, "--token", " padded ")
    assert "printable ASCII" in bad_token.output
    bad_host = invoke("serve", "--demo", "--project", project, "--allow-host", "a b")
    assert "--allow-host" in bad_host.output
    missing_root = invoke(
        "serve", "--demo", "--project", project, "--allow-root", str(tmp_path / "nope")
    )
    assert "--allow-root" in missing_root.output
    assert not (tmp_path / "p").exists()


# -- .loomkin/server.json --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[" * 100_000 + b"]" * 100_000,
        b'["url", "session_id"]',
        b'{"url": 5, "session_id": "s"}',
        b'{"url": "http://x", "session_id": {"a": 1}}',
        b'{"url": "file:///etc/passwd", "session_id": "s"}',
        b'{"url": "http://x", "session_id": "s", "token": null}',
        b"\xff\xfe not utf-8",
        b" " * 70_000,
    ],
)
def test_a_malformed_server_json_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / ".loomkin").mkdir()
    (tmp_path / ".loomkin" / "server.json").write_bytes(content)
    result = invoke("agent", "pause", "alice", "--project", str(tmp_path))
    assert "server.json" in result.output
    assert "delete it" in result.output


def test_a_server_json_that_is_no_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".loomkin" / "server.json").mkdir(parents=True)
    assert "server.json" in invoke("agent", "pause", "a", "--project", str(tmp_path)).output
    os.rmdir(tmp_path / ".loomkin" / "server.json")
    os.mkfifo(tmp_path / ".loomkin" / "server.json")  # would block a plain open()
    assert "regular file" in invoke("agent", "pause", "a", "--project", str(tmp_path)).output


def test_server_json_is_private_and_replaced_whole(tmp_path: Path) -> None:
    state = tmp_path / ".loomkin"
    state.mkdir(mode=0o755)
    (state / "server.json").write_text("{}")
    (state / "server.json").chmod(0o644)  # left by an older version
    path = write_server_info(tmp_path, url="http://127.0.0.1:9/?token=t", session_id="s", token="t")
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {
        "url": "http://127.0.0.1:9",
        "session_id": "s",
        "token": "t",
    }
    assert [p.name for p in state.iterdir()] == ["server.json"]  # no temporary file left
    remove_server_info(tmp_path, session_id="other", url="http://127.0.0.1:9")
    assert path.exists()  # another server's file is left alone
    remove_server_info(tmp_path, session_id="s", url="http://127.0.0.1:9/?token=t")
    assert not path.exists()


def test_a_new_loomkin_directory_is_private(tmp_path: Path) -> None:
    write_server_info(tmp_path, url="http://127.0.0.1:9", session_id="s", token="t")
    assert (tmp_path / ".loomkin").stat().st_mode & 0o777 == 0o700


def test_the_token_is_never_written_through_a_link(tmp_path: Path) -> None:
    readable = tmp_path / "shared"
    readable.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / ".loomkin").symlink_to(readable)  # a repository can ship this
    with pytest.raises(UserError, match="symbolic link"):
        write_server_info(project, url="http://127.0.0.1:9", session_id="s", token="t")
    assert list(readable.iterdir()) == []

    (project / ".loomkin").unlink()
    (project / ".loomkin").mkdir()
    (project / ".loomkin" / "server.json").symlink_to(readable / "stolen.json")
    with pytest.raises(UserError, match="not a regular file"):
        write_server_info(project, url="http://127.0.0.1:9", session_id="s", token="t")
    assert list(readable.iterdir()) == []
    with pytest.raises(UserError, match="cannot read"):
        read_server_info(project)  # nor read through one


@pytest.mark.parametrize(
    "command", [["cost"], ["resume"], ["trace", "export", "--file", "t.jsonl"]]
)
def test_a_command_reading_sessions_of_a_project_without_a_store_creates_none(
    tmp_path: Path, command: list[str]
) -> None:
    # They used to open (and so create) <project>/.loomkin/loomkin.db, then find no session.
    result = invoke(*command, "--project", str(tmp_path))
    text = " ".join(result.output.split())
    assert f"error: no sessions in {tmp_path}:" in text
    assert "loomkin.db does not exist" in text
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_died_says_how_to_serve_its_session_again(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: the server was killed
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    write_server_info(tmp_path, url=url, session_id="session_x", token="t" * 40)
    result = invoke("agent", "pause", "alice", "--project", str(tmp_path))
    text = " ".join(result.output.split())
    assert f"error: cannot reach the Loomkin server at {url}:" in text
    assert "loomkin serve --project DIR --session session_x" in text
