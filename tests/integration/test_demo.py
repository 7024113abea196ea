"""`loomkin demo` is the README's main command: it must run, exit 0 and show every step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def test_demo_runs_every_step_and_changes_the_sample_project(tmp_path: Path) -> None:
    project = tmp_path / "sample"
    result = subprocess.run(
        [sys.executable, "-m", "loomkin.cli", "demo", "--project", str(project), "--pace", "0"],
        capture_output=True,
        text=True,
        timeout=110,
        env={
            "COLUMNS": "200",
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/local/bin",
            "HOME": str(tmp_path),
        },
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [
        "SIMULATED",  # clearly labelled
        "you → Give greet() an optional shout flag",  # the goal reaches the Concierge
        "orienter ✉ ## Session brief",  # the Orienter briefs the Concierge
        "team greeters created",  # a team is spawned
        "spawn alice (coder)",
        "waits (requires_output) for milestone 'interface'",  # tasks with dependencies
        "→ alice",  # assigned by the scheduler
        "→ bob",
        "permission alice asks to run file_edit greetings/core.py",  # a permission prompt
        "file_edit: allow_once (by auto)",  # auto-answered, shown
        "milestone 'interface'",
        "→ tess",
        "concierge → you: All done.",  # results summarised
        "tasks: 3 completed",
    ]
    positions = []
    for step in steps:
        assert step in out, f"missing {step!r} in demo output:\n{out}"
        positions.append(out.index(step))
    # alice and bob work in parallel: bob's task starts before alice's completes.
    assert out.index("'Add farewell()' in_progress") < out.index(
        "'Add a shout flag to greet()' completed"
    )
    # The tester starts at the milestone, before the shout task is completed.
    assert out.index("'Test shout and farewell' in_progress") < out.index(
        "'Add a shout flag to greet()' completed"
    ) or out.index("milestone 'interface'") < out.index("'Test shout and farewell' in_progress")
    core = (project / "greetings" / "core.py").read_text()
    assert "shout: bool = False" in core
    assert (project / "greetings" / "farewell.py").exists()
    tests = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stderr
    assert "Ran 4 tests" in tests.stderr
