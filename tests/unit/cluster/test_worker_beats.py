"""When a host last heard each worker's directory report, and when a silent call reads its key."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import pytest

from loomkin.cluster.agents import AgentPlacer, Route
from loomkin.cluster.directory import WorkerDirectory
from loomkin.cluster.names import ClusterNames

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.kv import KeyValue

    from loomkin.cluster.leases import BusLeases

TTL = 9.0
NAMES = ClusterNames("beats")


@dataclass
class Report:
    """What a subscriber receives of a key-value write: its subject and headers."""

    subject: str
    headers: dict[str, str] | None = None


class Subscriptions:
    """Takes the directory's one subscription (a NATS connection's ``subscribe``)."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def subscribe(self, subject: str, **_: object) -> object:
        self.subjects.append(subject)
        return object()


async def heard(directory: WorkerDirectory, worker_id: str, *, deleted: bool = False) -> None:
    headers = {"KV-Operation": "DEL"} if deleted else None
    await directory._on_report(cast("Msg", Report(f"$KV.beats_workers.{worker_id}", headers)))


async def following() -> WorkerDirectory:
    directory = WorkerDirectory(cast("KeyValue", None))
    nc = Subscriptions()
    await directory.follow(cast("Client", nc), NAMES.every_worker_report)
    await directory.follow(cast("Client", nc), NAMES.every_worker_report)
    assert nc.subjects == ["$KV.beats_workers.*"]  # once per process, however often asked
    return directory


@pytest.mark.looptime
async def test_a_worker_heard_lately_has_not_lapsed_until_its_reports_stop() -> None:
    directory = await following()
    assert directory.lapsed("w1", after_s=1.0)  # never heard from
    await heard(directory, "w1")
    assert not directory.lapsed("w1", after_s=1.0)
    assert directory.lapsed("w2", after_s=1.0)
    await asyncio.sleep(1.5)
    assert directory.lapsed("w1", after_s=1.0)
    await heard(directory, "w1")
    assert not directory.lapsed("w1", after_s=1.0)
    assert directory.reports_heard == 2


@pytest.mark.looptime
async def test_a_worker_that_leaves_the_directory_lapses_at_once() -> None:
    directory = await following()
    await heard(directory, "w1")
    await heard(directory, "w1", deleted=True)  # shut down: its entry was deleted
    assert directory.lapsed("w1", after_s=60.0)


@pytest.mark.looptime
async def test_a_directory_that_does_not_follow_the_reports_has_every_worker_lapsed() -> None:
    directory = WorkerDirectory(cast("KeyValue", None))
    assert directory.lapsed("w1", after_s=60.0)  # its calls read their keys as they must


def placer_with(directory: WorkerDirectory) -> AgentPlacer:
    async def journal(*_: object) -> None:
        return None

    return AgentPlacer(
        nc=cast("Client", None),
        names=NAMES,
        leases=cast("BusLeases", None),
        directory=directory,
        session_id="s",
        project="/",
        ttl_s=TTL,
        on_placed=journal,
    )


@pytest.mark.looptime
async def test_a_silent_call_reads_its_key_once_a_ttl_or_once_its_worker_lapsed() -> None:
    directory = await following()
    placer = placer_with(directory)
    route = Route("w1", 7)
    loop = asyncio.get_running_loop()
    assert (placer.lapse_s, placer.recheck_s) == (TTL / 2, TTL)
    await heard(directory, "w1")
    read_at = loop.time()
    assert placer.check_s == 0.5
    for step in range(1, 18):  # every check_s up to 8.5 s; heard every third of the TTL
        await asyncio.sleep(0.5)
        if step % 6 == 0:
            await heard(directory, "w1")
        assert not placer.worth_reading(route, read_at)
    await asyncio.sleep(placer.check_s)
    assert placer.worth_reading(route, read_at)  # a TTL since the last read
    read_at = loop.time()
    await asyncio.sleep(TTL / 2 + 0.01)  # nothing heard for half a TTL
    assert placer.worth_reading(route, read_at)
    await heard(directory, "w1")
    assert not placer.worth_reading(route, read_at)
