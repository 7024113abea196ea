"""Reading the newest end of a session's log backwards, and stored sessions read-only."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from loomkin.core.events import NewEvent, UserMessagePosted
from loomkin.ids import EventId, MessageId, SessionId, new_id
from loomkin.persistence import MemoryStore
from loomkin.service.archive import read_before


def _event(session: str, n: int) -> NewEvent:
    return NewEvent(
        event_id=EventId(new_id("ev_")),
        recorded_at=float(n),
        event=UserMessagePosted(
            session_id=SessionId(session), message_id=MessageId(f"m{n}"), text=f"{session}{n}"
        ),
    )


@settings(max_examples=60, deadline=None)
@given(
    owners=st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=700),
    before=st.integers(min_value=0, max_value=800),
    limit=st.integers(min_value=1, max_value=400),
    kinds=st.sampled_from([None, frozenset({"user_message_posted"}), frozenset({"nothing"})]),
    scan=st.one_of(st.none(), st.integers(min_value=1, max_value=900)),
)
async def test_read_before_is_the_newest_rows_of_the_session_in_order(
    owners: list[str], before: int, limit: int, kinds: frozenset[str] | None, scan: int | None
) -> None:
    # Sessions interleave in one log: the windows must find exactly the session's newest
    # `limit` events before `before`, oldest first, whatever the interleaving.
    store = MemoryStore()
    if owners:
        await store.append([_event(owner, n) for n, owner in enumerate(owners)])
    everything = await store.read(0, session_id="a")
    expected = [r for r in everything if r.position < before]
    if kinds is not None:
        expected = [r for r in expected if r.event.kind in kinds]
    if scan is not None:  # never further back than `scan` positions
        expected = [r for r in expected if r.position > before - scan]
    got = await read_before(store, "a", before=before, limit=limit, kinds=kinds, scan=scan)
    assert [r.position for r in got] == [r.position for r in expected[-limit:]]
