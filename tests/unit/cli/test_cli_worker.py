"""``loomkin worker``: its options are checked before anything connects.

None of these needs NATS or Postgres: a bad value is refused while parsing.
"""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from loomkin.cli.cluster import worker, worker_options
from loomkin.cli.main import cli

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
