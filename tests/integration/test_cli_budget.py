"""`loomkin budget ...` raises a running session's budget and resumes the agents it paused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from test_cli_agent_controls import ENV, loomkin, wait_for_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _status(project: Path, name: str) -> str:
    raw = loomkin("agent", "inspect", name, "--json", project=project).stdout
    return str(json.loads(raw)["snapshot"]["status"])


def test_a_budget_pause_is_lifted_from_the_command_line(tmp_path: Path) -> None:
    project = tmp_path / "sample"
    project.mkdir()
    # A budget the concierge breaches on its second model call.
    (project / "loomkin.toml").write_text("[budgets]\nsession_tokens = 1\n")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "loomkin.cli", "serve", "--demo", "--project", str(project),
            "--port", "0", "--pace", "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, "HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        wait_for_server(project, server)
        deadline = time.monotonic() + 60
        while _status(project, "concierge") != "paused" and time.monotonic() < deadline:
            time.sleep(0.2)  # a real server in another process: poll its state
        assert _status(project, "concierge") == "paused"
        shown = loomkin("budget", "show", project=project)
        assert shown.returncode == 0, shown.stdout
        assert "session session:" in shown.stdout
        assert "tokens of 1" in shown.stdout

        bad = loomkin("budget", "set", "--session-tokens", "lots", project=project)
        assert bad.returncode == 2
        assert "not a number" in bad.stdout + bad.stderr
        nothing = loomkin("budget", "set", project=project)
        assert nothing.returncode == 2
        assert "at least one limit" in nothing.stdout

        raised = loomkin("budget", "set", "--session-tokens", "none", project=project)
        assert raised.returncode == 0, raised.stdout
        assert "session_tokens=None" in raised.stdout
        assert "Resumed: concierge" in raised.stdout
        deadline = time.monotonic() + 30
        while _status(project, "concierge") == "paused" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _status(project, "concierge") != "paused"
        shown = loomkin("budget", "show", project=project)
        assert "tokens of none" in shown.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stdout is not None
        server.stdout.close()
