from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from loomkin.bus import (
    Bus,
    BusMessage,
    agent_topic,
    classify,
    new_message,
    session_topic,
    team_topic,
)


class Probe:
    def __init__(self) -> None:
        self.got: list[BusMessage] = []

    def deliver(self, message: BusMessage) -> None:
        self.got.append(message)


def make(msg_type: str = "peer_message", content: str = "hi") -> BusMessage:
    return new_message(msg_type=msg_type, content=content, from_name="alice", sent_at=1.0)


@pytest.mark.parametrize(
    ("msg_type", "tier"),
    [
        ("abort", "urgent"),
        ("budget_exceeded", "urgent"),
        ("file_conflict", "urgent"),
        ("user_steer", "urgent"),
        ("user_cancel", "urgent"),
        ("task_assigned", "high"),
        ("tasks_unblocked", "high"),
        ("milestone_reached", "high"),
        ("review_request", "high"),
        ("review_response", "high"),
        ("conflict_detected", "high"),
        ("vote_request", "high"),
        ("vote_result", "high"),
        ("rendezvous_completed", "high"),
        ("rendezvous_timed_out", "high"),
        ("negotiation_offer", "high"),
        ("peer_message", "normal"),
        ("question", "normal"),
        ("answer", "normal"),
        ("insight", "normal"),
        ("something_new", "normal"),
        ("agent_status", "ignore"),
        ("role_changed", "ignore"),
        ("status_update", "ignore"),
    ],
)
def test_classify_follows_the_spec(msg_type: str, tier: str) -> None:
    assert classify(msg_type) == tier


def test_message_is_a_serialisable_value() -> None:
    m = new_message(
        msg_type="task_assigned",
        content="Task t1 is yours",
        from_name="lead",
        from_agent="a1",
        to_agent="a2",
        data={"task_id": "t1", "n": [1, 2]},
        sent_at=5.0,
    )
    assert m.tier == "high"
    assert m.message_id.startswith("msg_")
    as_json = json.dumps(dataclasses.asdict(m))
    assert BusMessage(**json.loads(as_json)) == m
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.content = "x"  # type: ignore[misc]


def test_publish_reaches_only_the_topic_subscribers() -> None:
    bus = Bus()
    team_a, team_b = Probe(), Probe()
    bus.subscribe(team_topic("A"), team_a)
    bus.subscribe(team_topic("B"), team_b)
    assert bus.publish(team_topic("A"), make()) == 1
    assert len(team_a.got) == 1
    assert team_b.got == []
    assert bus.publish(team_topic("C"), make()) == 0
    assert bus.statistics().unrouted == 1


def test_topic_helpers_are_distinct() -> None:
    assert len({agent_topic("x"), team_topic("x"), session_topic("x")}) == 3


def test_unsubscribe_is_idempotent_and_precise() -> None:
    bus = Bus()
    p1, p2 = Probe(), Probe()
    un1 = bus.subscribe("t", p1)
    bus.subscribe("t", p2)
    un1()
    un1()
    assert bus.publish("t", make()) == 1
    assert p1.got == []
    assert len(p2.got) == 1
    assert bus.subscribers("t") == 1


def test_a_subscriber_may_unsubscribe_during_delivery() -> None:
    bus = Bus()
    later = Probe()

    class Once:
        def __init__(self) -> None:
            self.n = 0
            self.remove = lambda: None

        def deliver(self, message: BusMessage) -> None:
            self.n += 1
            self.remove()

    once = Once()
    once.remove = bus.subscribe("t", once)
    bus.subscribe("t", later)
    assert bus.publish("t", make()) == 2
    assert bus.publish("t", make()) == 1
    assert once.n == 1
    assert len(later.got) == 2


def test_a_failing_subscriber_is_logged_and_does_not_stop_fan_out(caplog) -> None:
    bus = Bus()

    class Broken:
        def deliver(self, message: BusMessage) -> None:
            raise RuntimeError("mailbox bug")

    ok = Probe()
    bus.subscribe("t", Broken())
    bus.subscribe("t", ok)
    with caplog.at_level(logging.ERROR, logger="loomkin.bus.bus"):
        assert bus.publish("t", make()) == 1
    assert len(ok.got) == 1
    assert bus.statistics().deliver_errors == 1
    assert "mailbox bug" in caplog.text


def test_delivery_cost_does_not_depend_on_unrelated_topics() -> None:
    bus = Bus()
    for i in range(10_000):
        bus.subscribe(team_topic(f"t{i}"), Probe())
    target = Probe()
    bus.subscribe(team_topic("target"), target)
    assert bus.publish(team_topic("target"), make()) == 1
    assert len(target.got) == 1
    stats = bus.statistics()
    assert stats.topics == 10_001
    assert stats.delivered == 1
