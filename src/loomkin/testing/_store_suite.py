"""Shared parts of the store conformance suite: event makers, assertions, the base class.

How to use the suite is described in :mod:`loomkin.testing.conformance`; this module holds
what its parts (the log tests there, the lease tests in ``_lease_tests``) share.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import unittest
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from loomkin.core.events import (
    ModelCallCompleted,
    NewEvent,
    QuestionAsked,
    RecordedEvent,
    TaskCreated,
    UserMessagePosted,
    encode_event,
)
from loomkin.ids import (
    AgentId,
    CallId,
    EventId,
    MessageId,
    QuestionId,
    SessionId,
    TaskId,
    TeamId,
    new_id,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractAsyncContextManager

    from loomkin.core.events import Event
    from loomkin.core.store import Store

__all__ = [
    "GENESIS",
    "S1",
    "S2",
    "T0",
    "Batch",
    "Caught",
    "StoreSuite",
    "Unencodable",
    "documented_hash",
    "ids",
    "new_event",
    "odd_events",
    "positions",
    "raises",
    "task_event",
]


def new_event(event: Event, *, recorded_at: float = 1_732_420_000.25) -> NewEvent:
    """Wrap ``event`` for appending, with a fresh event id."""
    return NewEvent(event_id=EventId(new_id("evt_")), recorded_at=recorded_at, event=event)


def task_event(task: str, *, session: str = "s1", title: str = "") -> NewEvent:
    """A small event on stream ``task:<task>`` of session ``session``."""
    return new_event(
        TaskCreated(
            session_id=SessionId(session),
            task_id=TaskId(task),
            team_id=TeamId("team"),
            title=title or f"do {task}",
        )
    )


def odd_events() -> list[Event]:
    """Events with awkward payloads: non-ASCII, NUL, big integers, floats, tuples, None."""
    return [
        ModelCallCompleted(
            session_id=SessionId("s1"),
            agent_id=AgentId("agent-1"),
            call_id=CallId("call-1"),
            text='héllo ✓ \x00 "quoted" \n newline',
            tool_calls=({"name": "read", "args": {"path": "a.py", "lines": [1, 2]}},),
            input_tokens=2**53 + 1,
            cost_usd=0.1 + 0.2,
            interrupted=True,
        ),
        QuestionAsked(
            session_id=SessionId("s1"),
            question_id=QuestionId("q1"),
            asker=AgentId("agent-1"),
            asker_team=TeamId("team"),
            question="why?",
            hops=("team", "parent"),
            deadline=1e-7,
        ),
        UserMessagePosted(
            session_id=SessionId("s2"), message_id=MessageId("m1"), text="", to_agent=None
        ),
    ]


GENESIS = bytes(32)


def documented_hash(
    previous: bytes, event: RecordedEvent, *, kind: str | None = None, data: str | None = None
) -> bytes:
    """The chain hash of ``event`` as :mod:`loomkin.core.store` documents it.

    Computed here independently of the backends; ``kind`` and ``data`` replace the event's
    own columns (to forge a row that hashes right).
    """
    own_kind, schema_version, own_data = encode_event(event.event)
    canonical = [
        event.position,
        event.stream,
        event.stream_version,
        event.event_id,
        float(event.recorded_at),
        own_kind if kind is None else kind,
        schema_version,
        own_data if data is None else data,
        event.event.session_id,
    ]
    text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(previous + text.encode()).digest()


class Caught:
    """What :func:`raises` caught (set when the block exits)."""

    value: BaseException | None = None


@contextlib.contextmanager
def raises(kind: type[BaseException], *fragments: str) -> Iterator[Caught]:
    """Like ``pytest.raises``: the block must raise ``kind`` with every fragment in its text."""
    caught = Caught()
    try:
        yield caught
    except kind as exc:
        caught.value = exc
    else:
        raise AssertionError(f"expected {kind.__name__}, nothing was raised")
    missing = [f for f in fragments if f not in str(caught.value)]
    assert not missing, (
        f"{type(caught.value).__name__}({caught.value!s}) does not mention {missing}"
    )


def positions(events: Sequence[RecordedEvent]) -> list[int]:
    """The positions of ``events``."""
    return [e.position for e in events]


def ids(events: Sequence[RecordedEvent]) -> list[str]:
    """The event ids of ``events``."""
    return [e.event_id for e in events]


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """One step of a generated append plan."""

    events: tuple[tuple[int, int], ...]
    """``(task number, session number)`` per event."""
    expect: str
    """``"none"``, ``"current"`` (correct expected versions) or ``"stale"`` (one is wrong)."""


S1 = SessionId("s1")
S2 = SessionId("s2")
T0 = 1_732_420_000.0
"""A virtual "now" for lease tests (every lease call passes ``now=``)."""


class Unencodable:
    """A payload value JSON cannot encode (a bug in the caller, which the store must survive)."""


class StoreSuite(abc.ABC):
    """What every part of the suite needs: a fresh store per test, and the damage hooks."""

    max_examples: ClassVar[int] = 40
    """Hypothesis examples for the property test (each example opens a fresh store)."""

    @abc.abstractmethod
    def open_store(self) -> AbstractAsyncContextManager[Store]:
        """Return a context manager that opens a fresh, empty store and closes it at exit."""

    async def damage_row(
        self,
        store: Store,
        position: int,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
        digest: bytes | None = None,
    ) -> None:
        """Overwrite columns of the stored row at ``position``, as disk damage or a bad writer.

        ``digest`` replaces the row's chain hash. Backends that cannot do this leave it as
        is; the bad-row tests then skip.
        """
        raise unittest.SkipTest(f"{type(self).__name__} does not implement damage_row()")

    async def delete_row(self, store: Store, position: int) -> None:
        """Remove the stored row at ``position`` behind the store's back (leaving a gap)."""
        raise unittest.SkipTest(f"{type(self).__name__} does not implement delete_row()")

    async def refuse_event(self, store: Store, event_id: str) -> None:
        """Make the database refuse to insert the event ``event_id`` (a failing row).

        SQL backends install a trigger; a backend with no insert step of its own skips.
        """
        raise unittest.SkipTest(f"{type(self).__name__} does not implement refuse_event()")
