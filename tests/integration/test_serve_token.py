"""`loomkin serve` as a user runs it: the printed URL carries a new token, and it is needed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ENV = {"COLUMNS": "400", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
URL = re.compile(r"(http://127\.0\.0\.1:\d+)/(\S*)")


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``loomkin serve --demo``; return it and its output up to the URL line."""
    server = subprocess.Popen(
        [sys.executable, "-m", "loomkin.cli", "serve", "--demo", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, "HOME": str(tmp_path)},
    )
    assert server.stdout is not None
    lines: list[str] = []
    for line in server.stdout:
        lines.append(line)
        if "agent controls" in line:  # the line after the URL
            return server, lines
    server.wait(timeout=30)
    raise AssertionError("the server stopped before it was ready:\n" + "".join(lines))


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    servers: list[subprocess.Popen[str]] = []
    yield servers
    for server in servers:
        server.terminate()
        server.wait(timeout=30)
        assert server.stdout is not None
        server.stdout.close()


def test_the_printed_url_carries_a_new_token_that_every_api_call_needs(
    tmp_path: Path, stop: list[subprocess.Popen[str]]
) -> None:
    project = tmp_path / "demo"
    server, lines = _serve(tmp_path, "--project", str(project), "--pace", "0.3")
    stop.append(server)
    found = URL.search("".join(lines))
    assert found is not None, lines
    base, query = found.groups()
    assert query.startswith("?token=")
    token = query.removeprefix("?token=")
    assert len(token) >= 40
    info_path = project / ".loomkin" / "server.json"
    assert info_path.stat().st_mode & 0o777 == 0o600
    assert json.loads(info_path.read_text())["token"] == token
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/api/sessions").status_code == 401
        assert client.get("/api/sessions", params={"token": "wrong"}).status_code == 401
        assert client.get("/api/sessions", params={"token": token}).status_code == 200
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/sessions", headers=bearer).status_code == 200
        rebound = client.get("/api/sessions", headers={**bearer, "Host": "127.attacker.com"})
        assert rebound.status_code == 421
        assert client.get("/").status_code == 200  # the page loads, then asks with its token
        outside = client.post(
            "/api/sessions", json={"project": "/", "model": "ollama:x"}, headers=bearer
        )
        assert outside.status_code == 403
    server.terminate()
    server.wait(timeout=30)
    assert not info_path.exists()  # a stopped server leaves no stale token behind


def test_no_token_says_what_it_gives_up(tmp_path: Path, stop: list[subprocess.Popen[str]]) -> None:
    server, lines = _serve(tmp_path, "--project", str(tmp_path / "demo"), "--no-token")
    stop.append(server)
    assert server.stdout is not None
    for line in server.stdout:  # the warning follows the URL
        lines.append(line)
        if "tests only" in line:
            break
    text = " ".join(" ".join(lines).split())
    assert "--no-token: no token is asked for" in text
    assert "any program or user on this machine" in text
    found = URL.search("".join(lines))
    assert found is not None
    base, query = found.groups()
    assert "token" not in query
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/api/sessions").status_code == 200
        rebound = client.get("/api/sessions", headers={"Host": "127.attacker.com"})
        assert rebound.status_code == 421
