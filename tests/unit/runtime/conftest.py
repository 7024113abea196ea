from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING

import pytest

from loomkin.core.events import NewEvent, RecordedEvent
from loomkin.errors import StoreError
from loomkin.runtime import EventLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence


class FakeStore:
    """A small in-memory EventStore; yields once per append like a real I/O store would."""

    def __init__(self) -> None:
        self.rows: list[RecordedEvent] = []
        self.versions: dict[str, int] = {}
        self.appends: list[int] = []
        self.fail_if: Callable[[Sequence[NewEvent]], bool] | None = None
        self.reads = 0

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> list[RecordedEvent]:
        await asyncio.sleep(0)
        if self.fail_if is not None and self.fail_if(events):
            raise StoreError("injected failure")
        out = []
        for new in events:
            stream = new.event.stream()
            version = self.versions.get(stream, 0) + 1
            self.versions[stream] = version
            rec = RecordedEvent(
                position=len(self.rows) + 1,
                stream=stream,
                stream_version=version,
                event_id=new.event_id,
                recorded_at=new.recorded_at,
                event=new.event,
            )
            self.rows.append(rec)
            out.append(rec)
        self.appends.append(len(events))
        return out

    async def read(
        self, after: int = 0, *, limit: int | None = None, session_id: str | None = None
    ) -> list[RecordedEvent]:
        self.reads += 1
        await asyncio.sleep(0)
        rows = [
            r for r in self.rows[after:] if session_id is None or r.event.session_id == session_id
        ]
        return rows if limit is None else rows[:limit]

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        return [r for r in self.rows if r.stream == stream and r.stream_version > after]

    async def last_position(self) -> int:
        return len(self.rows)

    async def close(self) -> None:
        pass


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
async def log(store: FakeStore) -> AsyncIterator[EventLog]:
    async with EventLog(store) as event_log:
        yield event_log


@pytest.fixture(autouse=True)
def _no_stray_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    # looptime 0.9 asks the loop policy for a loop even around sync tests, which creates a loop
    # nobody closes (a ResourceWarning, an error under filterwarnings=error, once gc runs).
    # Giving sync tests a loop we own and close avoids it.
    if inspect.iscoroutinefunction(request.function):
        yield
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()
