"""The store conformance suite: one set of tests every :class:`~loomkin.core.store.Store` passes.

How to use it: subclass :class:`EventStoreConformance` in a pytest module under a ``Test…``
name and implement :meth:`~EventStoreConformance.open_store` (a fresh, empty store per call)
and, if the backend can, the damage hooks :meth:`~EventStoreConformance.damage_row`,
:meth:`~EventStoreConformance.delete_row` and :meth:`~EventStoreConformance.refuse_event`::

    class TestMyStore(EventStoreConformance):
        @contextlib.asynccontextmanager
        async def open_store(self) -> AsyncIterator[Store]:
            store = await MyStore.open(...)
            try:
                yield store
            finally:
                await store.close()

The tests are ``async def`` methods, so the project needs pytest-asyncio in ``auto`` mode. The
module imports neither pytest nor hypothesis at import time (the shipped ``loomkin.testing``
package must import without dev dependencies): a test that cannot run raises
:class:`unittest.SkipTest`, which pytest reports as a skip, and the property test imports
hypothesis when it runs. It drives its examples in a worker thread on an event loop of its
own (``asyncio.Runner``), one fresh store per example, so :meth:`open_store` must not depend
on the test's loop; lower :attr:`~EventStoreConformance.max_examples` for backends
whose stores are slow to create.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import unittest
import uuid
from typing import TYPE_CHECKING, cast

import psycopg

from loomkin.core.events import NewEvent, TaskCreated, encode_event
from loomkin.errors import ConcurrencyError, EventDecodeError, SchemaVersionError, StoreError
from loomkin.ids import TaskId, TeamId
from loomkin.testing._lease_tests import LeaseTests
from loomkin.testing._store_suite import (
    GENESIS,
    S1,
    Batch,
    Unencodable,
    documented_hash,
    ids,
    new_event,
    odd_events,
    positions,
    raises,
    task_event,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.core.store import Store

__all__ = [
    "POSTGRES_CANDIDATES",
    "EventStoreConformance",
    "new_event",
    "postgres_test_url",
    "scratch_postgres_schema",
    "task_event",
]

POSTGRES_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
"""Where tests look for PostgreSQL (trust auth), after ``$LOOMKIN_TEST_POSTGRES_URL``."""


class EventStoreConformance(LeaseTests):
    """Tests of the :class:`~loomkin.core.store.Store` contract; subclass per backend.

    The log, atomic batches, damaged rows and the hash chain are tested here; leases and
    fencing come from :class:`~loomkin.testing._lease_tests.LeaseTests`.
    """

    # -- basic log semantics -------------------------------------------------------------

    async def test_empty_store(self) -> None:
        async with self.open_store() as store:
            assert await store.last_position() == 0
            assert await store.read() == []
            assert await store.read_stream("task:a") == []

    async def test_append_returns_recorded_events(self) -> None:
        async with self.open_store() as store:
            batch = [task_event("a"), task_event("b"), task_event("a")]
            recorded = await store.append(batch)
            assert positions(recorded) == [1, 2, 3]
            assert [e.stream for e in recorded] == ["task:a", "task:b", "task:a"]
            assert [e.stream_version for e in recorded] == [1, 1, 2]
            assert ids(recorded) == [e.event_id for e in batch]
            assert [e.event for e in recorded] == [e.event for e in batch]
            assert [e.recorded_at for e in recorded] == [e.recorded_at for e in batch]
            assert await store.read() == recorded
            assert await store.last_position() == 3

    async def test_positions_and_versions_continue_across_batches(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a"), task_event("b")])
            second = await store.append([task_event("b"), task_event("c"), task_event("a")])
            assert positions(second) == [3, 4, 5]
            assert [e.stream_version for e in second] == [2, 1, 2]
            assert positions(await store.read()) == [1, 2, 3, 4, 5]

    async def test_events_round_trip_exactly(self) -> None:
        events = odd_events()
        async with self.open_store() as store:
            batch = [new_event(e, recorded_at=1_732_420_000.123456) for e in events]
            await store.append(batch)
            read = await store.read()
            assert [e.event for e in read] == events
            assert [e.recorded_at for e in read] == [1_732_420_000.123456] * 3
            assert ids(read) == [e.event_id for e in batch]

    async def test_large_batch_is_one_append(self) -> None:
        async with self.open_store() as store:
            recorded = await store.append([task_event(f"t{i % 10}") for i in range(500)])
            assert positions(recorded) == list(range(1, 501))
            assert [e.stream_version for e in await store.read_stream("task:t3")] == list(
                range(1, 51)
            )

    async def test_empty_batch_writes_nothing(self) -> None:
        async with self.open_store() as store:
            assert await store.append([]) == []
            assert await store.last_position() == 0

    # -- reading -------------------------------------------------------------------------

    async def test_read_after_and_limit(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event(f"t{i}") for i in range(6)])
            assert positions(await store.read(after=4)) == [5, 6]
            assert positions(await store.read(after=1, limit=2)) == [2, 3]
            assert await store.read(limit=0) == []
            assert await store.read(after=6) == []
            assert await store.read(after=99) == []

    async def test_read_filters_by_session(self) -> None:
        async with self.open_store() as store:
            sessions = ["s1", "s2", "s1", "s3", "s1", "s2"]
            await store.append([task_event(f"t{i}", session=s) for i, s in enumerate(sessions)])
            assert positions(await store.read(session_id="s1")) == [1, 3, 5]
            assert positions(await store.read(after=1, session_id="s1")) == [3, 5]
            assert positions(await store.read(limit=1, session_id="s2")) == [2]
            assert await store.read(session_id="nobody") == []

    async def test_read_stream_after(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a"), task_event("b"), task_event("a")])
            await store.append([task_event("a")])
            stream = await store.read_stream("task:a")
            assert [(e.position, e.stream_version) for e in stream] == [(1, 1), (3, 2), (4, 3)]
            assert [e.stream_version for e in await store.read_stream("task:a", after=2)] == [3]
            assert await store.read_stream("task:missing") == []

    # -- optimistic concurrency and rejected appends -------------------------------------

    async def test_expected_versions_that_hold_let_the_batch_in(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a")], expected_versions={"task:a": 0})
            recorded = await store.append(
                [task_event("a"), task_event("b")],
                expected_versions={"task:a": 1, "task:b": 0},
            )
            assert [e.stream_version for e in recorded] == [2, 1]

    async def test_stale_expected_version_raises_and_writes_nothing(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a"), task_event("a")])
            with raises(ConcurrencyError, "'task:a'", "2", "1"):
                await store.append(
                    [task_event("b"), task_event("a")], expected_versions={"task:a": 1}
                )
            with raises(ConcurrencyError, "'task:c'"):
                await store.append([task_event("b")], expected_versions={"task:c": 1})
            assert await store.last_position() == 2
            assert await store.read_stream("task:b") == []
            recorded = await store.append([task_event("b")], expected_versions={"task:a": 2})
            assert positions(recorded) == [3]

    async def test_duplicate_event_id_raises_and_writes_nothing(self) -> None:
        async with self.open_store() as store:
            first = task_event("a")
            await store.append([first])
            with raises(StoreError, first.event_id):
                await store.append([task_event("b"), first])
            twice = task_event("c")
            with raises(StoreError, twice.event_id):
                await store.append([twice, twice])
            assert positions(await store.read()) == [1]
            assert positions(await store.append([task_event("d")])) == [2]

    async def test_concurrent_appends_stay_gapless_and_atomic(self) -> None:
        async with self.open_store() as store:
            batches = [[task_event(f"t{i % 3}") for _ in range(1 + i % 4)] for i in range(20)]
            results = await asyncio.gather(*(store.append(b) for b in batches))
            for recorded in results:
                got = positions(recorded)
                assert got == list(range(got[0], got[0] + len(got)))
            everything = await store.read()
            assert positions(everything) == list(range(1, sum(map(len, batches)) + 1))
            for stream in ("task:t0", "task:t1", "task:t2"):
                versions = [e.stream_version for e in await store.read_stream(stream)]
                assert versions == list(range(1, len(versions) + 1))

    async def test_concurrent_writers_with_one_expected_version_one_wins(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a")])
            attempts = [
                store.append([task_event("a")], expected_versions={"task:a": 1}) for _ in range(5)
            ]
            outcomes = await asyncio.gather(*attempts, return_exceptions=True)
            assert sum(isinstance(o, list) for o in outcomes) == 1, outcomes
            assert all(isinstance(o, list | ConcurrencyError) for o in outcomes), outcomes
            assert await store.last_position() == 2

    # -- atomic batches --------------------------------------------------------------------

    async def test_a_batch_failing_half_way_leaves_nothing(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a")])
            bad = TaskCreated(
                session_id=S1,
                task_id=TaskId("bad"),
                team_id=TeamId("team"),
                title=cast("str", Unencodable()),
            )
            batch = [task_event("b"), task_event("c"), new_event(bad), task_event("d")]
            with raises(StoreError, "event 2 of the batch", "'task_created'", "not JSON"):
                await store.append(batch)
            assert positions(await store.read()) == [1]
            assert await store.read_stream("task:b") == []
            assert positions(await store.append(batch[:2])) == [2, 3]
            assert (await store.check()).ok

    async def test_a_row_the_database_refuses_half_way_leaves_nothing(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a")])
            batch = [task_event("b"), task_event("c"), task_event("d"), task_event("e")]
            await self.refuse_event(store, batch[2].event_id)
            with raises(StoreError, "nothing appended"):
                await store.append(batch)
            assert positions(await store.read()) == [1]
            assert await store.read_stream("task:c") == []
            recorded = await store.append([batch[0], batch[1], batch[3]])
            assert positions(recorded) == [2, 3, 4]
            report = await store.check()
            assert (report.ok, report.events_checked) == (True, 4), report

    async def test_each_batch_gets_one_contiguous_range(self) -> None:
        async with self.open_store() as store:
            batches = [[task_event(f"t{i}-{j}") for j in range(1 + i % 5)] for i in range(12)]
            results = await asyncio.gather(*(store.append(b) for b in batches))
            for batch, recorded in zip(batches, results, strict=True):
                first = recorded[0].position
                assert positions(recorded) == list(range(first, first + len(batch)))
                assert ids(recorded) == [e.event_id for e in batch]
                assert ids(await store.read(after=first - 1, limit=len(batch))) == ids(recorded)

    async def test_close_is_final_and_idempotent(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a")])
            await store.close()
            await store.close()
            with raises(StoreError):
                await store.append([task_event("b")])

    # -- damaged rows (skipped unless the subclass implements damage_row) ----------------

    async def _store_with_bad_row(
        self,
        store: Store,
        *,
        kind: str | None = None,
        schema_version: int | None = None,
        data: str | None = None,
    ) -> None:
        await store.append([task_event("a"), task_event("b")])
        await store.append([task_event("a"), task_event("c")])
        await self.damage_row(store, 3, kind=kind, schema_version=schema_version, data=data)

    async def _assert_rest_still_reads(self, store: Store) -> None:
        assert positions(await store.read(limit=2)) == [1, 2]
        assert positions(await store.read(after=3)) == [4]
        assert positions(await store.read_stream("task:c")) == [4]
        assert await store.last_position() == 4
        assert positions(await store.append([task_event("d")])) == [5]

    async def test_unknown_kind_names_position_and_kind(self) -> None:
        async with self.open_store() as store:
            await self._store_with_bad_row(store, kind="no_such_kind")
            with raises(EventDecodeError, "position 3", "'no_such_kind'"):
                await store.read()
            with raises(EventDecodeError, "position 3"):
                await store.read_stream("task:a")
            await self._assert_rest_still_reads(store)

    async def test_non_json_payload_names_position_and_kind(self) -> None:
        async with self.open_store() as store:
            await self._store_with_bad_row(store, data="{not json")
            with raises(EventDecodeError, "position 3", "'task_created'", "not JSON"):
                await store.read(after=1)
            await self._assert_rest_still_reads(store)

    async def test_payload_with_wrong_fields_names_position(self) -> None:
        async with self.open_store() as store:
            await self._store_with_bad_row(store, data='{"session_id": "s1", "bogus": 1}')
            with raises(EventDecodeError, "position 3", "bogus"):
                await store.read()
            await self._assert_rest_still_reads(store)

    async def test_wrong_schema_version_raises_schema_version_error(self) -> None:
        async with self.open_store() as store:
            await self._store_with_bad_row(store, schema_version=99)
            with raises(SchemaVersionError, "position 3", "99"):
                await store.read()
            await self._assert_rest_still_reads(store)

    # -- the hash chain and check() ------------------------------------------------------

    async def test_check_of_an_empty_store(self) -> None:
        async with self.open_store() as store:
            report = await store.check()
            assert report.ok, report
            assert (report.events_checked, report.last_good_position) == (0, 0)
            assert report.head == GENESIS.hex()

    async def test_the_chain_is_the_documented_one(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a"), task_event("b", session="s2")])
            await store.append([new_event(e) for e in odd_events()])
            report = await store.check()
            events = await store.read()
            assert report.ok, report
            assert (report.events_checked, report.last_good_position) == (5, 5)
            previous = GENESIS
            for event in events:
                previous = documented_hash(previous, event)
            assert report.head == previous.hex()
            assert "5 events" in report.summary()

    async def test_check_names_a_changed_row(self) -> None:
        async with self.open_store() as store:
            await self._store_with_bad_row(store, data='{"session_id": "s1", "bogus": 1}')
            report = await store.check()
            assert not report.ok
            assert (report.bad_position, report.events_checked) == (3, 2), report
            assert report.problem is not None
            assert "hash chain is broken" in report.problem
            assert "position 3" in report.summary()

    async def test_check_names_the_row_after_one_changed_with_its_own_hash(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a"), task_event("b"), task_event("c")])
            second = (await store.read(after=1, limit=1))[0]
            forged = TaskCreated(
                session_id=S1, task_id=TaskId("b"), team_id=TeamId("team"), title="forged"
            )
            _, _, data = encode_event(forged)
            first = (await store.read(limit=1))[0]
            digest = documented_hash(documented_hash(GENESIS, first), second, data=data)
            await self.damage_row(store, 2, data=data, digest=digest)
            assert (await store.read(after=1, limit=1))[0].event == forged
            report = await store.check()
            assert (report.bad_position, report.events_checked) == (3, 2), report

    async def test_check_names_a_row_that_hashes_but_does_not_decode(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event("a"), task_event("b")])
            first, second = await store.read()
            digest = documented_hash(
                documented_hash(GENESIS, first), second, kind="from_the_future"
            )
            await self.damage_row(store, 2, kind="from_the_future", digest=digest)
            report = await store.check()
            assert (report.bad_position, report.events_checked) == (2, 1), report
            assert report.problem is not None
            assert "does not decode" in report.problem
            assert "'from_the_future'" in report.problem

    async def test_check_names_a_gap(self) -> None:
        async with self.open_store() as store:
            await store.append([task_event(f"t{i}") for i in range(6)])
            await self.delete_row(store, 3)
            await self.delete_row(store, 4)
            report = await store.check()
            assert (report.bad_position, report.events_checked) == (3, 2), report
            assert report.problem is not None
            assert "3–4 missing before 5" in report.problem

    async def test_the_chain_continues_across_batches(self) -> None:
        async with self.open_store() as store:
            for i in range(5):
                await store.append([task_event(f"t{i}-{j}") for j in range(i + 1)])
            report = await store.check()
            assert (report.ok, report.events_checked) == (True, 15), report

    # -- properties ----------------------------------------------------------------------

    async def test_log_invariants_hold_for_any_appends(self) -> None:
        """Any sequence of batches keeps positions and versions gapless and reads consistent."""
        # Hypothesis drives examples synchronously, so they run in a worker thread with an
        # event loop of their own (one fresh store per example), leaving this loop free.
        await asyncio.to_thread(self._run_property)

    def _run_property(self) -> None:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        event = st.tuples(st.integers(0, 4), st.integers(0, 2))
        batch = st.builds(
            Batch,
            events=st.lists(event, max_size=6).map(tuple),
            expect=st.sampled_from(["none", "none", "current", "stale"]),
        )
        plans = st.lists(batch, max_size=8)

        with asyncio.Runner() as runner:
            runner.run(self._open_once())  # a skip or setup failure surfaces here, unshrunk

            @settings(
                max_examples=self.max_examples,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(plan=plans, after=st.integers(0, 40), limit=st.none() | st.integers(0, 10))
            def check(plan: list[Batch], after: int, limit: int | None) -> None:
                runner.run(self._check_plan(plan, after, limit))

            check()

    async def _open_once(self) -> None:
        async with self.open_store():
            pass

    async def _check_plan(self, plan: list[Batch], after: int, limit: int | None) -> None:
        async with self.open_store() as store:
            appended: list[NewEvent] = []
            versions: dict[str, int] = {}
            for step in plan:
                await self._append_step(store, step, appended, versions)
            everything = await store.read()
            assert positions(everything) == list(range(1, len(appended) + 1))
            assert ids(everything) == [e.event_id for e in appended]
            assert [e.event for e in everything] == [e.event for e in appended]
            assert await store.last_position() == len(appended)
            assert await store.read(after=after, limit=limit) == everything[after:][:limit]
            for stream, version in versions.items():
                of_stream = await store.read_stream(stream)
                assert of_stream == [e for e in everything if e.stream == stream]
                assert [e.stream_version for e in of_stream] == list(range(1, version + 1))
            for session in ("s0", "s1", "s2"):
                of_session = await store.read(session_id=session)
                assert of_session == [e for e in everything if e.event.session_id == session]
            report = await store.check()
            assert (report.ok, report.events_checked) == (True, len(appended)), report

    async def _append_step(
        self, store: Store, step: Batch, appended: list[NewEvent], versions: dict[str, int]
    ) -> None:
        batch = [task_event(f"t{task}", session=f"s{session}") for task, session in step.events]
        streams = sorted({e.event.stream() for e in batch}) or ["task:t0"]
        expected = {s: versions.get(s, 0) for s in streams}
        if step.expect == "stale":
            expected[streams[0]] += 1
            with raises(ConcurrencyError):
                await store.append(batch, expected_versions=expected)
            return
        recorded = await store.append(
            batch, expected_versions=expected if step.expect == "current" else None
        )
        assert positions(recorded) == list(range(len(appended) + 1, len(appended) + 1 + len(batch)))
        for new, rec in zip(batch, recorded, strict=True):
            versions[rec.stream] = versions.get(rec.stream, 0) + 1
            assert rec.stream_version == versions[rec.stream]
            assert rec.event_id == new.event_id
        appended.extend(batch)


# -- PostgreSQL for tests --------------------------------------------------------------------


@functools.cache
def _probe_postgres() -> tuple[str | None, str]:
    env = os.environ.get("LOOMKIN_TEST_POSTGRES_URL")
    errors: list[str] = []
    for url in (env,) if env else POSTGRES_CANDIDATES:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url, ""
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip()}")
    return None, "; ".join(errors)


def postgres_test_url() -> str:
    """Return the URL of the test PostgreSQL server, or skip the calling test.

    Tries ``$LOOMKIN_TEST_POSTGRES_URL``, else :data:`POSTGRES_CANDIDATES` (once per
    process). When no server answers the test is skipped with the reason, unless ``$CI`` is
    set: CI must really run the Postgres tests, so there the test fails instead.

    Raises:
        unittest.SkipTest: no server answers and ``$CI`` is not set.
        AssertionError: no server answers and ``$CI`` is set.
    """
    url, why = _probe_postgres()
    if url is not None:
        return url
    if os.environ.get("CI"):
        raise AssertionError(f"CI is set but PostgreSQL is unreachable: {why}")
    raise unittest.SkipTest(f"PostgreSQL is unreachable ({why})")


@contextlib.asynccontextmanager
async def scratch_postgres_schema(url: str | None = None) -> AsyncIterator[str]:
    """Yield a fresh schema name (``loomkin_test_<hex>``) on the test server; drop it at exit.

    Args:
        url: the server; default :func:`postgres_test_url` (which may skip the test).
    """
    server = url or postgres_test_url()
    schema = f"loomkin_test_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        async with await psycopg.AsyncConnection.connect(server, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
