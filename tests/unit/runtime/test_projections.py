"""The projection registry: one fan-out for replay and live, in order, fail-stop."""

from __future__ import annotations

import asyncio

import pytest

from loomkin.core.events import RecordedEvent, UserMessagePosted
from loomkin.errors import ProjectionFailed, UserError
from loomkin.ids import AgentId, EventId, MessageId, SessionId
from loomkin.runtime.projections import ProjectionRegistry


def rec(position: int, session: str = "s1") -> RecordedEvent:
    return RecordedEvent(
        position=position,
        stream=f"session:{session}",
        stream_version=position,
        event_id=EventId(f"e{position}"),
        recorded_at=0.0,
        event=UserMessagePosted(
            session_id=SessionId(session),
            message_id=MessageId(f"m{position}"),
            text=str(position),
            to_agent=AgentId("a"),
        ),
    )


class Probe:
    def __init__(self, name: str, seen: list[tuple[str, int, bool]]) -> None:
        self.name = name
        self.seen = seen
        self.caught = 0

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        self.seen.append((self.name, recorded.position, live))

    def caught_up(self) -> None:
        self.caught += 1


def test_replay_and_live_go_through_the_same_fan_out_in_registration_order() -> None:
    seen: list[tuple[str, int, bool]] = []
    registry = ProjectionRegistry()
    first, second = Probe("first", seen), Probe("second", seen)
    registry.register("first", first)
    registry.register("second", second)
    registry.replay([rec(1)])
    assert (first.caught, second.caught) == (1, 1)
    registry(rec(2))
    assert seen == [
        ("first", 1, False),
        ("second", 1, False),
        ("first", 2, True),
        ("second", 2, True),
    ]
    with pytest.raises(UserError, match="already registered"):
        registry.register("first", Probe("again", seen))


async def test_attach_replays_the_history_then_applies_what_arrived_meanwhile() -> None:
    seen: list[tuple[str, int, bool]] = []
    registry = ProjectionRegistry()
    probe = Probe("session", seen)
    reading = asyncio.Event()
    release = asyncio.Event()

    async def read() -> list[RecordedEvent]:
        reading.set()
        await release.wait()
        return [rec(1), rec(2)]

    attaching = asyncio.create_task(registry.attach("s1", [("session", probe)], read))
    await reading.wait()
    registry(rec(2))  # committed while the history was read: already in it
    registry(rec(3))  # committed after: applied live, once
    registry(rec(4, session="s2"))  # another session: never seen
    release.set()
    await attaching
    registry(rec(5))
    assert seen == [
        ("session", 1, False),
        ("session", 2, False),
        ("session", 3, True),
        ("session", 5, True),
    ]
    assert probe.caught == 1
    assert registry.attached("s1")
    registry.detach("s1")
    registry(rec(6))
    assert seen[-1] == ("session", 5, True)


def test_a_projection_that_raises_is_named_with_the_position() -> None:
    registry = ProjectionRegistry()
    cause = ValueError("bad state")

    class Broken:
        def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
            if recorded.position == 2:
                raise cause

        def caught_up(self) -> None:
            """Nothing to act on."""

    registry.register("broken", Broken())
    with pytest.raises(ProjectionFailed) as failed:
        registry.replay([rec(1), rec(2)])
    assert (failed.value.projection, failed.value.position) == ("broken", 2)
    assert failed.value.kind == "user_message_posted"
    assert failed.value.__cause__ is cause
