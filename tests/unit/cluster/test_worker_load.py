"""What a worker reports as its load: agents where their calls run, and a share per session host."""

from __future__ import annotations

from dataclasses import dataclass, replace

from loomkin.cluster import HostOptions, Worker, place


@dataclass
class Hosted:
    """Stands in for a hosted session: whether it places its agents, and how many it has."""

    placer: object | None
    count: int

    def agents(self) -> int:
        return self.count


def worker(**hosted: Hosted) -> Worker:
    node = Worker("nats://127.0.0.1:4222", HostOptions(store_url="unused", ttl_s=1.0))
    node._hosted = hosted  # type: ignore[assignment]  # not started: no bus, no executor
    return node


def test_a_session_whose_agents_run_elsewhere_weighs_one_agent_on_its_host() -> None:
    load = worker(a=Hosted(placer=object(), count=5), b=Hosted(placer=None, count=3)).load()
    assert load.agents == 1 + 3  # the placing host's share, and the agents it runs itself
    assert load.sessions == 2


def test_a_worker_hosting_many_sessions_is_not_taken_for_an_idle_one() -> None:
    hosts = worker(**{f"s{i}": Hosted(placer=object(), count=4) for i in range(20)}).load()
    busy = replace(worker().load(), agents=5)  # runs five agents of sessions hosted elsewhere
    assert place([hosts, busy], agents=1) == busy
