"""Shared pieces of the speculation tests: the git project and the two-task pipeline.

``ann`` writes the interface (the blocker); ``bob`` may start the client, which waits on it,
ahead of time in his own worktree. The tests, the judge tests and the crash child all set
up the same project and tasks; only the parts the agents play differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.events import TaskStatusChanged
from loomkin.testing.repos import git, git_repo
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model
    from loomkin.service import Loomkin, Session

__all__ = [
    "CLIENT",
    "SETTINGS",
    "SIGNATURE",
    "WRITES",
    "git",
    "git_project",
    "open_pipeline",
    "tentative_done",
]

SETTINGS = SessionSettings(bootstrap_orienter=False)
WRITES = PermissionPolicy(auto_approve=frozenset({"file_write", "file_edit"}))
SIGNATURE = "def parse(text: str) -> Ast"
CLIENT = "from api import parse\n\nresult = parse('x')\n"


def git_project(root: Path) -> Path:
    """A committed git repository at ``root``: a README and a placeholder ``api.py``."""
    files = {"README.md": "demo\n", "api.py": "# the interface goes here\n"}
    return git_repo(root, {**files, ".gitignore": ".loomkin/\n"})


async def open_pipeline(
    lk: Loomkin,
    repo: Path,
    model_factory: Callable[[Role, str], Model],
    opened: list[Session] | None = None,
) -> tuple[Session, str, str]:
    """Open a session on ``repo`` with ann on the interface and bob beside her.

    Returns the session, the interface task and the client task that depends on it.
    ``opened`` gets the session as soon as it exists, for parts that look at it.
    """
    session = await lk.open_session(
        repo, model_factory=model_factory, settings=SETTINGS, policy=WRITES
    )
    if opened is not None:
        opened.append(session)
    await session.spawn_agent("ann", "coder")
    interface = await session.create_task("write the interface", assign_to="ann")
    client = await session.create_task("write the client", depends_on=(interface,))
    await session.spawn_agent("bob", "coder")
    return session, interface, client


async def tentative_done(session: Session) -> None:
    """Wait until a task of ``session`` is completed tentatively (speculative work is in)."""
    async with session.events() as events:
        async for recorded in events:
            event = recorded.event
            if isinstance(event, TaskStatusChanged) and event.status == "completed_tentative":
                return
    raise AssertionError("the session's log closed before any task completed tentatively")
