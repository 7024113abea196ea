"""`loomkin agent ...` controls the agents of a running `loomkin serve` from another process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ENV = {"COLUMNS": "200", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}


def loomkin(*args: str, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loomkin.cli", *args, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "HOME": str(project.parent)},
        check=False,
    )


def wait_for_server(project: Path, server: subprocess.Popen[str]) -> None:
    """Wait until the server wrote .loomkin/server.json (reading its output, not sleeping)."""
    assert server.stdout is not None
    for line in server.stdout:
        if "web app" in line:
            return
    raise AssertionError("the server stopped before it was ready")


def test_pause_steer_inspect_resume_from_the_command_line(tmp_path: Path) -> None:
    project = tmp_path / "sample"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loomkin.cli",
            "serve",
            "--demo",
            "--project",
            str(project),
            "--port",
            "0",
            "--pace",
            "0.3",
            "--no-auto-approve",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, "HOME": str(tmp_path)},
    )
    try:
        wait_for_server(project, server)
        info = json.loads((project / ".loomkin" / "server.json").read_text())
        assert info["url"].startswith("http://127.0.0.1:")
        paused = loomkin("agent", "pause", "concierge", "--force", project=project)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert '"action": "pause"' in paused.stdout
        steered = loomkin("agent", "steer", "concierge", "mind the tests", project=project)
        assert steered.returncode == 0, steered.stdout
        inspected = loomkin("agent", "inspect", "concierge", project=project)
        assert inspected.returncode == 0, inspected.stdout
        assert "name: concierge" in inspected.stdout
        assert "messages:" in inspected.stdout
        missing = loomkin("agent", "pause", "nobody", project=project)
        assert missing.returncode == 2
        assert "nobody" in missing.stdout
        status = ""
        deadline = time.monotonic() + 30
        while status != "paused" and time.monotonic() < deadline:  # lands at a checkpoint
            raw = loomkin("agent", "inspect", "concierge", "--json", project=project).stdout
            status = json.loads(raw)["snapshot"]["status"]
        assert status == "paused"
        resumed = loomkin("agent", "resume", "concierge", project=project)
        assert resumed.returncode == 0, resumed.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stdout is not None
        server.stdout.close()
