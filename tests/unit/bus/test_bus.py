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
from loomkin.core.messages import MESSAGE_TYPES, MessageType, is_message_type, tier_of


class Probe:
    def __init__(self) -> None:
        self.got: list[BusMessage] = []

    def deliver(self, message: BusMessage) -> None:
        self.got.append(message)


def make(msg_type: MessageType = "peer_message", content: str = "hi") -> BusMessage:
    return new_message(msg_type=msg_type, content=content, from_name="alice", sent_at=1.0)


@pytest.mark.parametrize(
    ("msg_type", "tier"),
    [
        ("abort", "urgent"),
        ("budget_exceeded", "urgent"),
        ("file_conflict", "urgent"),
        ("task_assigned", "high"),
        ("task_completed", "high"),
        ("task_failed", "high"),
        ("partial_output", "high"),
        ("conflict_detected", "high"),
        ("vote_request", "high"),
        ("vote_result", "high"),
        ("orient", "high"),
        ("user_message", "normal"),
        ("peer_message", "normal"),
        ("question", "normal"),
        ("answer", "normal"),
        ("insight", "normal"),
        ("nudge", "normal"),
        ("escalation", "normal"),
    ],
)
def test_every_declared_type_has_the_tier_of_the_spec(msg_type: MessageType, tier: str) -> None:
    assert tier_of(msg_type) == tier
    assert classify(msg_type) == tier


def test_the_vocabulary_is_closed_and_every_type_has_a_tier() -> None:
    assert set(MESSAGE_TYPES) == {
        "abort", "budget_exceeded", "file_conflict", "task_assigned", "task_completed",
        "task_failed", "partial_output", "conflict_detected", "vote_request", "vote_result",
        "orient", "user_message", "peer_message", "question", "answer", "insight", "nudge",
        "escalation", "negotiation_offer", "negotiation_result", "review_request",
        "ready_notice", "rendezvous",
        "onboarding",
    }  # fmt: skip
    assert {tier_of(t) for t in MESSAGE_TYPES} <= {"urgent", "high", "normal"}
    assert tier_of("onboarding") == "high"  # a new agent reads its brief before work


@pytest.mark.parametrize("old", ["tasks_unblocked", "user_steer", "something_new", "status_update"])
def test_types_read_back_from_an_older_log_travel_as_normal(old: str) -> None:
    assert not is_message_type(old)
    assert classify(old) == "normal"


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
