"""Fixtures of the browser tests: ``loomkin serve`` subprocesses that can be stopped and
restarted on the same port and store, and a headless Chromium."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
URL = re.compile(r"http://127\.0\.0\.1:\d+/\S*")
TOKEN = "e2e-" + "k" * 40


def need_chromium() -> None:
    """Skip without Debian's Chromium (fail under CI, where scripts/test.sh installs it)."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One ``loomkin serve`` process on a fixed port and token (so a page can outlive it).

    ``script``: run this Python file instead (it takes ``--port`` and ``--token`` too and
    prints the page's URL), for a session a test scripts itself.
    """

    def __init__(self, *args: str, port: int, script: Path | None = None) -> None:
        self.args = args
        self.port = port
        self.script = script
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.url = ""

    def start(self) -> str:
        """Start it and return the page's URL (with the token)."""
        command = [sys.executable, "-m", "loomkin.cli", "serve", *self.args]
        if self.script is not None:
            command = [sys.executable, str(self.script), *self.args]
        command += ["--port", str(self.port), "--token", TOKEN]
        env = {k: v for k, v in os.environ.items() if k != "LOOMKIN_TOKEN"} | {"COLUMNS": "400"}
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.proc, self.lines = proc, []
        found = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.lines.append(line)
                if URL.search(line):
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(60):
            self.stop()
            pytest.fail("loomkin serve printed no URL:\n" + "".join(self.lines))
        match = next(m for line in self.lines if (m := URL.search(line)))
        self.url = match.group(0)
        return self.url

    def stop(self) -> None:
        """Stop it (SIGINT, then SIGKILL if it hangs)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def serve() -> Iterator[list[Server]]:
    """A list to put servers in; every one still running is stopped at the end."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Debian Chromium."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shared() -> Iterator[tuple[str, str, str]]:
    """The NATS URL, a scratch store URL and a scratch cluster name (deleted at the end).

    Set up before the browser and torn down after it: Playwright's sync API runs an event
    loop of its own meanwhile.
    """
    import asyncio
    import contextlib

    from loomkin.testing.cluster import nats_test_url, scratch_cluster
    from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema

    bus, server = nats_test_url(), postgres_test_url()
    schema_cm, cluster_cm = scratch_postgres_schema(server), scratch_cluster(bus)
    schema = asyncio.run(schema_cm.__aenter__())  # nothing is opened before the yield
    cluster = asyncio.run(cluster_cm.__aenter__())
    try:
        yield bus, f"{server}{'&' if '?' in server else '?'}schema={schema}", cluster
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(cluster_cm.__aexit__(None, None, None))
        asyncio.run(schema_cm.__aexit__(None, None, None))
