"""``loomkin worker``: its options are checked before anything connects.

None of these needs NATS or Postgres: a bad value is refused while parsing.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from loomkin.cli.cluster import worker, worker_options
from loomkin.cli.main import cli

if TYPE_CHECKING:
    from pathlib import Path

PG = "postgresql://127.0.0.1:5432/test"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["worker", "--store", PG, *args], env={})
    return result.exit_code, " ".join(result.output.split())


def unused_nats_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"nats://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--stall-s", "0"),
        ("--stall-s", "-2"),
        ("--stall-s", "inf"),
        ("--stall-s", "nan"),
        ("--lease-ttl", "0"),
        ("--lease-ttl", "inf"),
    ],
)
def test_a_duration_that_is_not_positive_is_a_usage_error_naming_it(flag: str, value: str) -> None:
    code, output = invoke("--bus", unused_nats_url(), flag, value)
    assert code == 2, output
    assert f"Invalid value for '{flag}': must be a positive number of seconds" in output
    assert "Traceback" not in output


def test_a_stall_limit_that_is_not_a_number_is_a_usage_error() -> None:
    code, output = invoke("--bus", unused_nats_url(), "--stall-s", "soon")
    assert code == 2, output
    assert "Invalid value for '--stall-s': 'soon' is not a valid float" in output


def test_a_good_stall_limit_is_taken_as_given() -> None:
    args = ["--store", PG, "--bus", unused_nats_url(), "--lease-ttl", "6", "--stall-s", "2.5"]
    with worker.make_context("worker", list(args)) as ctx:  # it consumes the list
        assert (ctx.params["lease_ttl"], ctx.params["stall_s"]) == (6.0, 2.5)
    with worker.make_context("worker", list(args[:4])) as ctx:
        assert (ctx.params["lease_ttl"], ctx.params["stall_s"]) == (10.0, None)


def test_the_stall_limit_is_what_the_worker_hosts_with() -> None:
    given = worker_options(PG, lease_ttl=6.0, stall_s=2.5)
    assert (given.ttl_s, given.stall_s, given.store_url) == (6.0, 2.5, PG)
    assert worker_options(PG, lease_ttl=6.0, stall_s=None).stall_s is None  # the TTL


def test_the_help_of_worker_explains_the_stall_limit() -> None:
    result = CliRunner().invoke(cli, ["worker", "--help"], env={})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--stall-s SECONDS" in text
    assert "could not be renewed for this long" in text
    assert "Default: the lease TTL" in text


@pytest.mark.parametrize(
    "command",
    [
        ["worker"],
        ["cluster", "run", "goal"],
        ["cluster", "status"],
        ["cluster", "control", "session_x", "ann", "pause"],
    ],
    ids=["worker", "cluster-run", "cluster-status", "cluster-control"],
)
@pytest.mark.parametrize("store", ["x", "sqlite:///tmp/x.db", "memory:"])
def test_a_store_other_than_postgres_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], store: str
) -> None:
    # A worker once took `--store x` for a SQLite file `x` in the current directory: a
    # cluster of one, sharing nothing with the others.
    monkeypatch.chdir(tmp_path)
    args = [*command, "--store", store, "--bus", unused_nats_url()]
    result = CliRunner().invoke(cli, args, env={})
    created = sorted(p.name for p in tmp_path.iterdir())
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert "Invalid value for '--store': must be the Postgres store every worker shares" in output
    assert created == []


@pytest.mark.parametrize(
    ("action", "text", "message"),
    [("steer", None, "steer needs --text GUIDANCE"), ("pause", "hi", "--text is only for steer")],
)
def test_cluster_control_refuses_text_that_does_not_fit_the_action(
    action: str, text: str | None, message: str
) -> None:
    args = ["cluster", "control", "session_x", "ann", action, "--store", PG]
    args += ["--bus", unused_nats_url(), *(["--text", text] if text else [])]
    result = CliRunner().invoke(cli, args, env={})
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert message in output
