"""The runtime's insides, for tests and benchmarks that must reach below the facade.

The Python API (:class:`~loomkin.Loomkin`, :class:`~loomkin.Session`) hands out frozen
records only. A unit test of the agent layer, or a benchmark that installs a tool on an agent
or times events at the moment they commit, needs the live objects; these functions give them,
and they are the only sanctioned way to. Nothing in ``loomkin.api`` or ``loomkin.cli`` may use
them (an import contract in ``pyproject.toml`` keeps those to the facade).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.store import EventStore
    from loomkin.runtime.eventlog import EventLog
    from loomkin.service import Loomkin, Session
    from loomkin.tasks import TaskService

__all__ = ["event_log", "event_store", "live_agent", "session_runtime", "task_service"]


def session_runtime(session: Session) -> SessionRuntime:
    """The parts of a live session (its directory, router, desk, context ...)."""
    return session._runtime


def live_agent(session: Session, ref: str) -> Agent:
    """The live agent ``ref`` (id, ``name`` or ``team/name``) of ``session``."""
    return session_runtime(session).agent(ref)


def event_log(loomkin: Loomkin) -> EventLog:
    """The runtime's event log (to add a listener that runs at commit time)."""
    return loomkin._log


def task_service(loomkin: Loomkin) -> TaskService:
    """The runtime's task service (commands on the board of every session)."""
    return loomkin._tasks


def event_store(loomkin: Loomkin) -> EventStore:
    """The store under the runtime's log (to inject a slow or failing write)."""
    return loomkin._store
