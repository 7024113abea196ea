"""A command started in the background by a script stops on SIGTERM, cleaning up.

A shell without job control (a script's ``loomkin worker &``) starts background commands
with SIGINT ignored. SIGTERM must still cancel the command like Ctrl-C, so its cleanups run
(a worker hands its sessions over, a server removes its ``server.json``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ENV = {"COLUMNS": "400", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}


def _ignore_sigint() -> None:  # in the child, before exec: what `cmd &` in a script does
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_server_started_with_sigint_ignored_stops_on_sigterm(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "loomkin.cli", "serve", "--demo", "--port", "0"),
            *("--project", str(project), "--pace", "0.3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, "HOME": str(tmp_path)},
        preexec_fn=_ignore_sigint,  # this process starts no thread that it could deadlock
    )
    assert server.stdout is not None
    lines: list[str] = []
    try:
        for line in server.stdout:
            lines.append(line)
            if "agent controls" in line:  # the line after the URL: it serves
                break
        info_path = project / ".loomkin" / "server.json"
        assert info_path.exists(), "".join(lines)
        server.terminate()
        code = server.wait(timeout=30)
        lines += server.stdout.readlines()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()
    assert code == 130, "".join(lines)
    assert "interrupted" in "".join(lines)
    assert not info_path.exists()  # its cleanup ran
