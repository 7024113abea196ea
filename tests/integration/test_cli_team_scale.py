"""`loomkin team scale` shows and bounds a team of a running `loomkin serve` (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from test_cli_agent_controls import ENV, loomkin, wait_for_server

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_team_scale_from_the_command_line(tmp_path: Path) -> None:
    project = tmp_path / "sample"
    server = subprocess.Popen(
        [
            sys.executable, "-m", "loomkin.cli", "serve", "--demo", "--project", str(project),
            "--port", "0", "--pace", "0.3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**ENV, "HOME": str(tmp_path)},
    )  # fmt: skip
    try:
        wait_for_server(project, server)
        shown = loomkin("team", "scale", "root", project=project)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "team root: autoscaler off" in shown.stdout
        pinned = loomkin("team", "scale", "root", "--pin", "2", "--json", project=project)
        assert pinned.returncode == 0, pinned.stdout + pinned.stderr
        assert json.loads(pinned.stdout)["pinned"] == 2
        bounded = loomkin("team", "scale", "--min", "1", "--max", "3", project=project)
        assert bounded.returncode == 0, bounded.stdout
        assert "bounds 1–3" in bounded.stdout
        bad = loomkin("team", "scale", "--min", "5", "--max", "2", project=project)
        assert bad.returncode == 2
        assert "min 5 is above max 2" in bad.stdout + bad.stderr
        both = loomkin("team", "scale", "--pin", "1", "--max", "2", project=project)
        assert both.returncode == 2
        assert "--pin excludes" in both.stdout + both.stderr
        missing = loomkin("team", "scale", "nope", project=project)
        assert missing.returncode == 2
    finally:
        server.terminate()
        server.communicate(timeout=30)
