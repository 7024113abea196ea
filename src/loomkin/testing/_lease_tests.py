"""The lease and fencing part of the store conformance suite (see ``conformance.py``).

Every lease call passes ``now=`` (virtual time from :data:`T0`), so expiry is tested without
waiting and the same on every backend, the server-clocked Postgres included.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loomkin.core.store import Lease
from loomkin.errors import ConcurrencyError, LeaseHeld, StaleEpoch, UserError
from loomkin.testing._store_suite import S1, S2, T0, StoreSuite, positions, raises, task_event

if TYPE_CHECKING:
    from loomkin.core.store import Store
    from loomkin.ids import SessionId

__all__ = ["LeaseTests"]


class LeaseTests(StoreSuite):
    """Leases (one writer per session) and fenced appends."""

    async def _acquire(
        self,
        store: Store,
        holder: str,
        *,
        at: float = T0,
        session: SessionId = S1,
        ttl_s: float = 30.0,
        take_over: bool = False,
    ) -> Lease:
        return await store.acquire_lease(
            session, holder, ttl_s=ttl_s, host=f"host-{holder}", pid=4000 + len(holder),
            take_over=take_over, now=at,
        )  # fmt: skip

    async def test_first_acquisition_records_the_holder_at_epoch_1(self) -> None:
        async with self.open_store() as store:
            assert await store.current_lease(S1) is None
            lease = await self._acquire(store, "alpha", ttl_s=30.0)
            assert (lease.session_id, lease.epoch, lease.holder) == (S1, 1, "alpha")
            assert (lease.host, lease.pid) == ("host-alpha", 4005)
            assert (lease.since, lease.expires_at, lease.ttl_s) == (T0, T0 + 30.0, 30.0)
            assert lease.fence.session_id == S1
            assert lease.fence.epoch == 1
            assert await store.current_lease(S1) == lease
            assert lease.is_live(T0 + 29.9)
            assert not lease.is_live(T0 + 30.0)

    async def test_a_live_lease_is_held_and_the_error_names_the_holder(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha")
            with raises(
                LeaseHeld, "'s1'", "'alpha'", "'host-alpha'", "pid 4005", "2024-11-24"
            ) as caught:
                await self._acquire(store, "beta", at=T0 + 29.0)
            held = caught.value
            assert isinstance(held, LeaseHeld)
            assert (held.holder, held.host, held.pid) == ("alpha", "host-alpha", 4005)
            assert (held.since, held.expires_at, held.epoch) == (T0, T0 + 30.0, 1)
            assert await store.current_lease(S1) == lease

    async def test_an_expired_lease_is_taken_with_a_higher_epoch(self) -> None:
        async with self.open_store() as store:
            await self._acquire(store, "alpha", ttl_s=10.0)
            taken = await self._acquire(store, "beta", at=T0 + 10.0)
            assert (taken.holder, taken.epoch, taken.since) == ("beta", 2, T0 + 10.0)
            assert await store.current_lease(S1) == taken

    async def test_take_over_takes_a_live_lease_at_once(self) -> None:
        async with self.open_store() as store:
            await self._acquire(store, "alpha")
            taken = await self._acquire(store, "beta", at=T0 + 1.0, take_over=True)
            assert (taken.holder, taken.epoch) == ("beta", 2)

    async def test_the_same_holder_acquiring_again_gets_a_new_epoch(self) -> None:
        async with self.open_store() as store:
            first = await self._acquire(store, "alpha")
            second = await self._acquire(store, "alpha", at=T0 + 1.0)
            assert second.epoch == first.epoch + 1
            with raises(StaleEpoch, "epoch 1"):
                await store.append([task_event("a")], fences=[first.fence])

    async def test_leases_are_per_session(self) -> None:
        async with self.open_store() as store:
            one = await self._acquire(store, "alpha", session=S1)
            two = await self._acquire(store, "beta", session=S2)
            assert (one.epoch, two.epoch) == (1, 1)
            recorded = await store.append(
                [task_event("a", session="s1"), task_event("b", session="s2")],
                fences=[one.fence, two.fence],
            )
            assert positions(recorded) == [1, 2]

    async def test_renewal_extends_the_lease_and_keeps_its_epoch(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha", ttl_s=10.0)
            renewed = await store.renew_lease(lease, now=T0 + 8.0)
            assert (renewed.epoch, renewed.since, renewed.expires_at) == (1, T0, T0 + 18.0)
            longer = await store.renew_lease(renewed, ttl_s=60.0, now=T0 + 9.0)
            assert (longer.expires_at, longer.ttl_s) == (T0 + 69.0, 60.0)
            with raises(LeaseHeld, "'alpha'"):
                await self._acquire(store, "beta", at=T0 + 20.0)
            assert await store.current_lease(S1) == longer

    async def test_an_expired_lease_nobody_took_can_still_be_renewed(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha", ttl_s=10.0)
            renewed = await store.renew_lease(lease, now=T0 + 50.0)
            assert (renewed.epoch, renewed.expires_at) == (1, T0 + 60.0)
            assert positions(await store.append([task_event("a")], fences=[lease.fence])) == [1]

    async def test_renewing_a_lease_taken_over_is_refused(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha", ttl_s=10.0)
            await self._acquire(store, "beta", at=T0 + 11.0)
            with raises(StaleEpoch, "renew", "epoch 1", "'beta'", "epoch 2") as caught:
                await store.renew_lease(lease, now=T0 + 12.0)
            stale = caught.value
            assert isinstance(stale, StaleEpoch)
            assert (stale.session_id, stale.epoch, stale.current_epoch) == ("s1", 1, 2)

    async def test_release_frees_the_session_at_once(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha", ttl_s=30.0)
            assert await store.release_lease(lease, now=T0 + 1.0)
            record = await store.current_lease(S1)
            assert record is not None
            assert record.released
            assert not record.is_live(T0 + 2.0)
            assert not await store.release_lease(lease, now=T0 + 2.0)
            with raises(StaleEpoch, "released"):
                await store.renew_lease(lease, now=T0 + 2.0)
            taken = await self._acquire(store, "beta", at=T0 + 2.0)
            assert taken.epoch == 2
            assert not await store.release_lease(lease, now=T0 + 3.0)
            assert await store.current_lease(S1) == taken

    async def test_bad_lease_arguments_are_user_errors(self) -> None:
        async with self.open_store() as store:
            for ttl in (0.0, -1.0, float("nan"), float("inf")):
                with raises(UserError, "ttl_s"):
                    await self._acquire(store, "alpha", ttl_s=ttl)
            with raises(UserError, "holder"):
                await store.acquire_lease(S1, "", ttl_s=1.0, now=T0)
            assert await store.current_lease(S1) is None

    async def test_concurrent_acquisitions_have_one_winner(self) -> None:
        async with self.open_store() as store:
            holders = [f"h{i}" for i in range(6)]
            outcomes = await asyncio.gather(
                *(self._acquire(store, h) for h in holders), return_exceptions=True
            )
            won = [o for o in outcomes if not isinstance(o, BaseException)]
            assert len(won) == 1, outcomes
            assert all(isinstance(o, LeaseHeld) for o in outcomes if o not in won), outcomes
            assert won[0].epoch == 1
            assert await store.current_lease(S1) == won[0]

    # -- fencing -------------------------------------------------------------------------

    async def test_a_fenced_append_with_the_current_epoch_is_written(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha")
            recorded = await store.append([task_event("a"), task_event("b")], fences=[lease.fence])
            assert positions(recorded) == [1, 2]
            assert await store.append([], fences=[lease.fence]) == []

    async def test_a_stale_epoch_is_refused_and_writes_nothing(self) -> None:
        async with self.open_store() as store:
            old = await self._acquire(store, "alpha")
            await store.append([task_event("a")], fences=[old.fence])
            new = await self._acquire(store, "beta", at=T0 + 1.0, take_over=True)
            for batch in ([task_event("b")], [task_event("c"), task_event("d")], []):
                with raises(StaleEpoch, "'s1'", "epoch 1", "taken over", "'beta'", "epoch 2"):
                    await store.append(batch, fences=[old.fence])
            assert positions(await store.read()) == [1]
            assert positions(await store.append([task_event("e")], fences=[new.fence])) == [2]

    async def test_one_stale_fence_refuses_a_batch_of_several_sessions(self) -> None:
        async with self.open_store() as store:
            one = await self._acquire(store, "alpha", session=S1)
            two = await self._acquire(store, "beta", session=S2)
            await self._acquire(store, "gamma", session=S2, at=T0 + 1.0, take_over=True)
            batch = [task_event("a", session="s1"), task_event("b", session="s2")]
            with raises(StaleEpoch, "'s2'"):
                await store.append(batch, fences=[one.fence, two.fence])
            assert await store.last_position() == 0

    async def test_fences_of_released_or_never_leased_sessions_are_refused(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha")
            await store.release_lease(lease, now=T0 + 1.0)
            with raises(StaleEpoch, "released"):
                await store.append([task_event("a")], fences=[lease.fence])
            never = Lease(
                session_id=S2, epoch=1, holder="x", host="h", pid=1,
                since=T0, expires_at=T0 + 1.0, ttl_s=1.0,
            )  # fmt: skip
            with raises(StaleEpoch, "never leased"):
                await store.append([task_event("b", session="s2")], fences=[never.fence])
            assert await store.last_position() == 0

    async def test_an_append_without_fences_is_not_checked(self) -> None:
        async with self.open_store() as store:
            await self._acquire(store, "alpha")
            assert positions(await store.append([task_event("a")])) == [1]

    async def test_fence_and_expected_versions_are_checked_together(self) -> None:
        async with self.open_store() as store:
            lease = await self._acquire(store, "alpha")
            await store.append([task_event("a")], fences=[lease.fence])
            with raises(ConcurrencyError):
                await store.append(
                    [task_event("a")], expected_versions={"task:a": 0}, fences=[lease.fence]
                )
            recorded = await store.append(
                [task_event("a")], expected_versions={"task:a": 1}, fences=[lease.fence]
            )
            assert positions(recorded) == [2]
