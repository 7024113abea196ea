"""What every ``loomkin`` command shares: the console, error handling, the default store.

Only light modules are imported here (click, rich, the error classes): a command imports the
runtime when it runs, so ``loomkin --help`` and the commands that call no model start at once.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from loomkin.errors import LoomkinError

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from pathlib import Path

__all__ = ["console", "default_store", "run_command"]

console = Console(highlight=False)


def run_command(coro: Coroutine[object, object, int]) -> None:
    """Run a command's coroutine; a Loomkin error is one line (exit 2), never a traceback."""
    try:
        code = asyncio.run(coro)
    except LoomkinError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; the session is in the store and can be resumed")
        sys.exit(130)
    sys.exit(code)


def default_store(project: Path) -> str:
    """The SQLite store of a project: ``<project>/.loomkin/loomkin.db``."""
    return f"sqlite:///{project / '.loomkin' / 'loomkin.db'}"
