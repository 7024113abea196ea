"""Start-up cost of the CLI: CPU seconds of a fresh interpreter importing Loomkin.

How this works and why:

* Each figure runs a command in a child process and reads the CPU time (user + system) it
  used from ``resource.getrusage(RUSAGE_CHILDREN)`` before and after: CPU time, unlike wall
  time, barely moves when other processes share the machine, so the figure can be held to
  a budget (SPEC §4: commands that call no model start in a fraction of a second).
* Three commands side by side: a bare interpreter (``python -c pass``, the floor nobody
  can go below), ``python -c 'import loomkin.cli.main'`` (what every command pays) and
  ``loomkin --help`` (the console script, or ``python -m loomkin.cli`` when the script is
  not next to the interpreter). One untimed run first writes the bytecode caches; the
  figure is the median of the timed runs.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["STARTUP_FIGURES", "child_cpu_s", "loomkin_command", "startup_cpu"]

STARTUP_FIGURES = ("python", "import_cli", "loomkin_help")
"""The keys of :func:`startup_cpu`'s result, in the order tables show them."""


def loomkin_command() -> list[str]:
    """The ``loomkin`` console script beside this interpreter, else ``python -m loomkin.cli``."""
    script = Path(sys.executable).with_name("loomkin")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "loomkin.cli"]


def child_cpu_s(command: Sequence[str]) -> float:
    """Run ``command`` to completion; return the CPU seconds (user + system) it used.

    Raises:
        subprocess.CalledProcessError: The command failed (a start-up figure of a command
            that crashed would mean nothing).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup_cpu(repeats: int = 5) -> dict[str, float]:
    """Median CPU seconds of each start-up command over ``repeats`` runs.

    Returns:
        ``{"python": …, "import_cli": …, "loomkin_help": …}`` (see :data:`STARTUP_FIGURES`).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "import_cli": [sys.executable, "-c", "import loomkin.cli.main"],
        "loomkin_help": [*loomkin_command(), "--help"],
    }
    figures: dict[str, float] = {}
    for name, command in commands.items():
        child_cpu_s(command)  # untimed: writes the bytecode caches a first import may lack
        figures[name] = round(statistics.median(child_cpu_s(command) for _ in range(repeats)), 4)
    return figures
