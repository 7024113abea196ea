"""One registry for every projection of the log: the same fan-out for replay and live events.

How this works and why:

* A :class:`Projection` folds events into state with ``apply(recorded, live=...)``. ``live`` is
  ``False`` while history is replayed and ``True`` for events appended now; a projection uses it
  only to decide whether to *act* (deliver a message, arm a timer, wake a scheduler), never to
  decide what its state is, so replaying a log gives the state that living through it gave.
* ``caught_up()`` is called once, after a projection's replay and before its first live event:
  the place to act on what the history left open (deliver unread messages, re-arm deadlines).
* Projections are registered in one place, in order: runtime-wide ones
  (:meth:`ProjectionRegistry.register`, replayed by :meth:`ProjectionRegistry.replay` when the
  runtime starts) and those of one session (:meth:`ProjectionRegistry.attach`, which replays
  the session's history and then follows it live with no gap and no duplicate). The registry
  itself is the event log's listener.
* Fail-stop: a projection that raises is not logged and skipped (it would drift from the log
  from then on). :class:`~loomkin.errors.ProjectionFailed` names the projection and the event's
  position; the event log halts on it (see :mod:`loomkin.runtime.eventlog`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loomkin.errors import ProjectionFailed, UserError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from loomkin.core.events import RecordedEvent

__all__ = ["Projection", "ProjectionRegistry"]


class Projection(Protocol):
    """State folded from the log (see the module docstring)."""

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        """Fold one committed event; act on it only when ``live``."""
        ...

    def caught_up(self) -> None:
        """The replay is over: act on what the history left open (often nothing)."""
        ...


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    projection: Projection


class ProjectionRegistry:
    """The ordered projections of one runtime; the event log's one listener."""

    def __init__(self) -> None:
        self._runtime: list[_Entry] = []
        self._sessions: dict[str, tuple[_Entry, ...]] = {}
        self._attaching: dict[str, list[RecordedEvent]] = {}

    def register(self, name: str, projection: Projection) -> None:
        """Add a runtime-wide projection (before :meth:`replay`); ``name`` appears in errors."""
        if any(entry.name == name for entry in self._runtime):
            raise UserError(f"a projection named {name!r} is already registered")
        self._runtime.append(_Entry(name, projection))

    def replay(self, history: Iterable[RecordedEvent]) -> None:
        """Fold the runtime's history into the runtime-wide projections, then catch them up."""
        for recorded in history:
            for entry in self._runtime:
                _apply(entry, recorded, live=False)
        for entry in self._runtime:
            entry.projection.caught_up()

    def catch_up(self, history: Iterable[RecordedEvent]) -> None:
        """Fold events committed elsewhere since :meth:`replay` into the runtime-wide projections.

        For a session another process wrote (before this runtime took it over): its events
        after the runtime's replay never came through this log's listener. They are applied
        as replayed history (``live=False``), in position order, and only once: the caller
        passes each event one time.
        """
        for recorded in history:
            for entry in self._runtime:
                _apply(entry, recorded, live=False)

    async def attach(
        self,
        session_id: str,
        projections: Sequence[tuple[str, Projection]],
        read_history: Callable[[], Awaitable[list[RecordedEvent]]],
    ) -> None:
        """Give a session its projections: replay its history, then follow it live.

        Events of the session committed while the history is read are held back and applied
        (live) right after the replay, so none is missed and none applied twice.

        Raises:
            UserError: the session already has projections.
            ProjectionFailed: a projection raised during the replay.
        """
        if session_id in self._sessions or session_id in self._attaching:
            raise UserError(f"session {session_id!r} is already attached")
        entries = tuple(_Entry(name, projection) for name, projection in projections)
        held: list[RecordedEvent] = []
        self._attaching[session_id] = held
        try:
            history = await read_history()
            last = 0
            for recorded in history:
                for entry in entries:
                    _apply(entry, recorded, live=False)
                last = recorded.position
            for entry in entries:
                entry.projection.caught_up()
        finally:
            del self._attaching[session_id]
        self._sessions[session_id] = entries
        for recorded in held:
            if recorded.position > last:
                for entry in entries:
                    _apply(entry, recorded, live=True)

    def detach(self, session_id: str) -> None:
        """Stop feeding a session's projections (it is no longer hosted here)."""
        self._sessions.pop(session_id, None)

    def attached(self, session_id: str) -> bool:
        """Whether the session's projections are fed by this registry."""
        return session_id in self._sessions

    def __call__(self, recorded: RecordedEvent) -> None:
        """Fan one live event out to the runtime-wide projections, then its session's."""
        for entry in self._runtime:
            _apply(entry, recorded, live=True)
        session_id = recorded.event.session_id
        held = self._attaching.get(session_id)
        if held is not None:
            held.append(recorded)
            return
        for entry in self._sessions.get(session_id, ()):
            _apply(entry, recorded, live=True)

    def __repr__(self) -> str:
        names = [e.name for e in self._runtime]
        return f"ProjectionRegistry({names!r}, sessions={len(self._sessions)})"


def _apply(entry: _Entry, recorded: RecordedEvent, *, live: bool) -> None:
    try:
        entry.projection.apply(recorded, live=live)
    except ProjectionFailed:
        raise
    except Exception as exc:
        raise ProjectionFailed(entry.name, recorded.position, recorded.event.kind, exc) from exc
