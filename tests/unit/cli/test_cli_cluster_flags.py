"""``loomkin run`` and ``serve`` with ``--bus``: bad combinations are usage errors naming the flag.

None of these needs NATS or Postgres: each is refused before anything connects, except the
unreachable server, which must fail within seconds instead of retrying for ever.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from loomkin.cli.main import cli

if TYPE_CHECKING:
    from pathlib import Path

PG = "postgresql://127.0.0.1:5432/test"
NATS = "nats://127.0.0.1:4222"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={})
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--bus", NATS], "--bus needs --store postgresql://"),
        (["--bus", NATS, "--store", "sqlite:///x.db"], "--bus needs --store postgresql://"),
        (["--bus", "http://127.0.0.1:4222", "--store", PG], "--bus must be a NATS URL"),
        (["--bus", "127.0.0.1:4222", "--store", PG], "--bus must be a NATS URL"),
        (["--cluster", "blue"], "--cluster needs --bus"),
        (["--lease-ttl", "5"], "--lease-ttl needs --bus"),
        (["--no-host"], "--no-host needs --bus"),
        (["--bus", NATS, "--store", PG, "--lease-ttl", "0"], "--lease-ttl"),
        (["--bus", NATS, "--store", PG, "--lease-ttl", "inf"], "--lease-ttl"),
        (["--bus", NATS, "--store", PG, "--cluster", "a.b"], "invalid cluster name 'a.b'"),
    ],
)
def test_a_bad_cluster_option_is_a_usage_error_naming_it(
    tmp_path: Path, command: str, flags: list[str], message: str
) -> None:
    goal = ["goal"] if command == "run" else []
    code, output = invoke(command, *goal, "--project", str(tmp_path), *flags)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["run", "goal", "--serve", "0"], "--serve"),
        (["run", "goal", "--session", "s1"], "--session"),
        (["run", "goal", "--base-url", "http://127.0.0.1:1/v1"], "--base-url"),
        (["run", "goal", "--otlp"], "--otlp"),
        (["serve", "--demo"], "--demo"),
        (["serve", "--session", "s1"], "--session"),
        (["serve", "--base-url", "http://127.0.0.1:1/v1"], "--base-url"),
    ],
)
def test_embedded_only_options_are_refused_with_bus(
    tmp_path: Path, command: list[str], flag: str
) -> None:
    code, output = invoke(*command, "--project", str(tmp_path), "--bus", NATS, "--store", PG)
    assert code == 2, output
    assert f"{flag} cannot be used with --bus" in output


def test_serve_on_a_cluster_needs_no_project() -> None:
    code, output = invoke("serve", "--bus", NATS)
    assert code == 2
    assert "--bus needs --store" in output  # not "pass --project DIR"


def test_an_unreachable_nats_server_fails_within_seconds(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, output = invoke(
        "run", "goal", "--project", str(tmp_path), "--no-host", "--yes",
        "--store", PG, "--bus", f"nats://127.0.0.1:{port}",
    )  # fmt: skip
    assert code == 2, output
    assert f"cannot reach the NATS server at nats://127.0.0.1:{port} (--bus)" in output


def test_agent_commands_against_a_cluster_server_ask_for_the_session(tmp_path: Path) -> None:
    from loomkin.cli.control import write_server_info

    # `serve --bus` records itself with no default session: it shows a whole cluster.
    write_server_info(tmp_path, url="http://127.0.0.1:9/?token=t", session_id="", token="t")
    code, output = invoke("agent", "pause", "ann", "--project", str(tmp_path))
    assert code == 2
    assert "pass --session ID" in output
