"""What every ``loomkin`` command shares: the console, error handling, the default store.

Only light modules are imported here (click, rich, the error classes): a command imports the
runtime when it runs, so ``loomkin --help`` and the commands that call no model start at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console
from rich.markup import escape

from loomkin.errors import LeaseHeld, LoomkinError

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from pathlib import Path
    from types import FrameType

__all__ = ["console", "counted", "default_store", "fail", "run_command", "shown", "stored_sessions"]

console = Console(highlight=False, emoji=False)
"""Every line goes through rich markup; user text is escaped, and ``:m:`` stays ``:m:``."""


def fail(message: str) -> NoReturn:
    """Print ``message`` as one error line and exit with status 2."""
    console.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(2)


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1 ("1 agent", "3 sessions")."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def shown(text: str, limit: int = 200) -> str:
    """``text`` cut for an error line (a 5,000-character path must not flood it)."""
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2 :]}"


RESUMABLE = "the session is in the store and can be resumed"
"""What Ctrl-C leaves behind for a command that runs a session (``run_command``'s default)."""


def run_command(
    coro: Coroutine[object, object, int], *, interrupted: str | None = RESUMABLE
) -> None:
    """Run a command's coroutine; a Loomkin error is one line (exit 2), never a traceback.

    Args:
        coro: The command's work; its result is the exit status.
        interrupted: What to add to "interrupted" after Ctrl-C or SIGTERM ("" for nothing),
            or ``None`` for a command that says for itself how it stopped (a worker hands
            its sessions over and says so).
    """
    # SIGTERM stops like Ctrl-C: the main task is cancelled, so cleanups run (the web server
    # removes its .loomkin/server.json, a worker hands its sessions over) instead of the
    # process dying on the spot. Only the main thread may set handlers (a command run from a
    # thread keeps the default).
    main_thread = threading.current_thread() is threading.main_thread()
    try:
        code = asyncio.run(_cancelled_by_sigterm(coro) if main_thread else coro)
    except LeaseHeld as exc:  # another process runs the session: say how to take it
        fail(f"{exc} (pass --take-over to take it now)")
    except LoomkinError as exc:
        fail(str(exc))
    except OSError as exc:  # a file or socket the command needed: one line, not a traceback
        where = f": {shown(str(exc.filename))}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}")
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM
        if interrupted:
            console.print(f"[yellow]interrupted[/]; {escape(interrupted)}")
        elif interrupted is not None:
            console.print("[yellow]interrupted[/]")
        sys.exit(130)
    sys.exit(code)


async def _cancelled_by_sigterm(coro: Coroutine[object, object, int]) -> int:
    """Await ``coro``; SIGTERM cancels it meanwhile.

    Not by raising SIGINT, which ``asyncio.run`` turns into a cancellation only if SIGINT is
    handled: a shell without job control (a script's ``loomkin worker &``) starts
    its background commands with SIGINT ignored, and they would never stop on SIGTERM.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(main.cancel)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return await coro
    finally:
        signal.signal(signal.SIGTERM, previous)


def default_store(project: Path) -> str:
    """The SQLite store of a project: ``<project>/.loomkin/loomkin.db``."""
    return f"sqlite:///{project / '.loomkin' / 'loomkin.db'}"


def stored_sessions(project: Path, store: str | None) -> str:
    """The store a command that reads sessions opens: ``store``, else the project's own.

    A project with no ``.loomkin/loomkin.db`` has no sessions to read, and opening it would
    create an empty store there (a stray ``.loomkin`` in whatever directory the command
    ran in): say so instead, as one error line.
    """
    if store is not None:
        return store
    path = project / ".loomkin" / "loomkin.db"
    if not path.exists():
        fail(
            f"no sessions in {shown(str(project))}: {shown(str(path))} does not exist "
            "(run `loomkin run` or `loomkin demo --project DIR` there first, or pass --project "
            "or --store)"
        )
    return default_store(project)
