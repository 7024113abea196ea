"""Votes: the deterministic tie rule, each quorum mode, deadlines, and the deadlock escalation.

The tally (pure): the winner has the largest summed weight; ties go to the option with more
votes, then to the option listed first. ``majority`` needs more than 50 % of the weight cast,
``supermajority`` at least two thirds, ``unanimous`` every voter voting for the winner.
In a session: a vote closes when all voted or at its deadline (with the votes cast so far);
without quorum it is escalated to the proposer's lead, or the Concierge when the lead
proposed it, with the options and tallies in readable text.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.coordination import tally
from loomkin.coordination.votes import Ballot
from loomkin.core.events import DecisionLogged, VoteCast, VoteProposed, VoteResolved
from loomkin.testing.internals import event_store

from .conftest import World, open_world

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from loomkin.agents.agent import Agent
    from loomkin.core.events import NewEvent, RecordedEvent
    from loomkin.core.store import Fence
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime


def _ballots(*votes: tuple[str, float]) -> list[Ballot]:
    return [Ballot(voter=f"v{i}", option=o, weight=w) for i, (o, w) in enumerate(votes)]


# -- the tally ------------------------------------------------------------------------------------


def test_a_weight_tie_goes_to_the_option_with_more_votes() -> None:
    t = tally(["x", "y"], _ballots(("x", 1.0), ("y", 0.5), ("y", 0.5)), "majority", 3)
    assert (t.winner, t.counts, t.pct, t.quorum_met) == ("y", {"x": 1, "y": 2}, 50.0, False)


def test_a_full_tie_goes_to_the_option_listed_first_whatever_the_ballot_order() -> None:
    for order in (["x", "y"], ["y", "x"]):
        votes = [("y", 1.0), ("x", 1.0)] if order[0] == "x" else [("x", 1.0), ("y", 1.0)]
        assert tally(order, _ballots(*votes), "majority", 2).winner == order[0]


@pytest.mark.parametrize(
    ("votes", "met"),
    [
        ([("x", 1.0), ("y", 1.0)], False),  # exactly half is not a majority
        ([("x", 1.01), ("y", 1.0)], True),
        ([("x", 1.0)], True),  # of the weight cast: one vote of three voters can decide
    ],
)
def test_majority_needs_more_than_half_the_weight(
    votes: list[tuple[str, float]], met: bool
) -> None:
    assert tally(["x", "y"], _ballots(*votes), "majority", 3).quorum_met is met


@pytest.mark.parametrize(
    ("votes", "met"),
    [
        ([("x", 1.0), ("x", 1.0), ("y", 1.0)], True),  # two thirds
        ([("x", 1.3), ("y", 0.7)], False),  # 65 %
        ([("x", 1.4), ("y", 0.6)], True),  # 70 %
    ],
)
def test_supermajority_needs_two_thirds(votes: list[tuple[str, float]], met: bool) -> None:
    assert tally(["x", "y"], _ballots(*votes), "supermajority", 3).quorum_met is met


@pytest.mark.parametrize(
    ("votes", "eligible", "met"),
    [
        ([("x", 1.0), ("x", 0.5), ("x", 2.0)], 3, True),
        ([("x", 1.0), ("x", 0.5)], 3, False),  # one voter did not vote
        ([("x", 2.0), ("x", 2.0), ("y", 0.1)], 3, False),  # one dissent, however light
    ],
)
def test_unanimous_needs_every_voter_for_the_winner(
    votes: list[tuple[str, float]], eligible: int, met: bool
) -> None:
    assert tally(["x", "y"], _ballots(*votes), "unanimous", eligible).quorum_met is met


def test_no_ballots_no_winner() -> None:
    t = tally(["x", "y"], [], "majority", 2)
    assert (t.winner, t.quorum_met, t.pct) == (None, False, 0.0)


# -- votes in a session ---------------------------------------------------------------------------


async def _team(lk: Loomkin, project: Path) -> tuple[World, Agent, Agent, Agent]:
    world = await open_world(lk, project)
    lead = await world.agent("lead", "lead")
    alice = await world.agent("alice")
    bob = await world.agent("bob")
    await world.agent("concierge", "concierge")  # hosts the session; never a voter
    return world, lead, alice, bob


async def _propose(world: World, proposer: Agent, quorum: str, deadline_s: float = 60.0) -> str:
    await world.call(
        proposer,
        "propose_vote",
        topic="cache storage",
        options=["redis", "memory"],
        quorum=quorum,
        deadline_s=deadline_s,
    )
    proposed = await world.events("vote_proposed")
    (vote_id,) = [e.vote_id for e in proposed if isinstance(e, VoteProposed)]
    return vote_id


async def _resolved(world: World) -> VoteResolved:
    (resolved,) = [e for e in await world.events("vote_resolved") if isinstance(e, VoteResolved)]
    return resolved


async def test_a_deadline_closes_the_vote_with_the_partial_votes(
    lk: Loomkin, project: Path
) -> None:
    world, _lead, alice, bob = await _team(lk, project)
    vote_id = await _propose(world, alice, "majority")
    await world.call(alice, "cast_vote", vote_id=vote_id, option="redis", confidence=0.9)
    await world.call(bob, "cast_vote", vote_id=vote_id, option="Redis", confidence=0.5)
    await asyncio.sleep(59)
    assert await world.events("vote_resolved") == []  # the lead has not voted yet

    await asyncio.sleep(2)
    resolved = await _resolved(world)
    assert (resolved.outcome, resolved.winner, resolved.reason) == (
        "decided",
        "redis",
        "the deadline passed",
    )
    assert resolved.counts == {"redis": 2, "memory": 0}
    decisions = await world.events("decision_logged")
    (decision,) = [e for e in decisions if isinstance(e, DecisionLogged)]
    assert decision.title == "cache storage: redis"
    assert decision.description == "Collective decision (majority, 2 of 3 voted)."
    assert await world.messages("escalation") == []  # decided: nothing to escalate


async def test_unanimous_with_partial_votes_at_the_deadline_is_escalated_to_the_lead(
    lk: Loomkin, project: Path
) -> None:
    world, lead, alice, bob = await _team(lk, project)
    vote_id = await _propose(world, alice, "unanimous", deadline_s=30)
    await world.call(alice, "cast_vote", vote_id=vote_id, option="redis", confidence=1.0)
    await world.call(bob, "cast_vote", vote_id=vote_id, option="redis", confidence=1.0)
    await asyncio.sleep(31)
    await world.lk.wait_idle()

    resolved = await _resolved(world)
    assert (resolved.outcome, resolved.winner, resolved.decision_id) == ("no_quorum", None, None)
    assert await world.events("decision_logged") == []
    (escalation,) = await world.messages("escalation")
    assert escalation.to_agent == lead.agent_id
    assert escalation.data == {"vote_id": vote_id, "on_deadlock": "escalate"}
    assert escalation.content == (
        "The vote on 'cache storage' proposed by alice ended without a decision (the deadline "
        "passed): the unanimous quorum was not reached, so it is yours to decide.\n"
        "Options and tallies:\n"
        "- redis: 2 votes, weight 1.75 (100%)\n"
        "- memory: 0 votes, weight 0.00 (0%)\n"
        "2 of 3 voters voted; not voted: lead.\n"
        "Decide it (record the choice with decision_log) and tell the team (peer_message), "
        "or re-open the vote with propose_vote."
    )
    assert "[Escalation]\nThe vote on 'cache storage'" in world.seen("lead")
    results = await world.messages("vote_result")
    assert len(results) == 3
    assert results[0].content.endswith("lead was asked to decide.")


async def test_a_supermajority_missed_by_a_split_vote_is_escalated_at_once(
    lk: Loomkin, project: Path
) -> None:
    world, lead, alice, bob = await _team(lk, project)
    vote_id = await _propose(world, alice, "supermajority")
    await world.call(alice, "cast_vote", vote_id=vote_id, option="memory", confidence=1.0)
    await world.call(bob, "cast_vote", vote_id=vote_id, option="memory", confidence=1.0)
    # The lead's expertise in "general" weighs its one vote almost as much as the two others.
    result = await world.call(lead, "cast_vote", vote_id=vote_id, option="redis", confidence=0)

    assert result == f"Voted 'redis' in {vote_id} (weight 1.25)."
    resolved = await _resolved(world)  # every voter voted: no need to wait for the deadline
    assert resolved.reason == "every voter voted"
    assert resolved.outcome == "no_quorum"
    assert resolved.winner is None
    assert resolved.counts == {"redis": 1, "memory": 2}
    assert 50 < resolved.winning_pct < 66.67
    (escalation,) = await world.messages("escalation")
    assert escalation.to_agent == lead.agent_id
    assert "- memory: 2 votes, weight 1.75 (58%)" in escalation.content
    assert "3 of 3 voters voted." in escalation.content


async def test_a_deadlocked_vote_proposed_by_the_lead_goes_to_the_concierge(
    lk: Loomkin, project: Path
) -> None:
    world, lead, alice, _bob = await _team(lk, project)
    vote_id = await _propose(world, lead, "unanimous")
    await world.call(alice, "cast_vote", vote_id=vote_id, option="memory")
    text = await world.call(lead, "resolve_vote", vote_id=vote_id)

    assert text.startswith(f"Vote {vote_id} closed without a decision (no quorum)")
    (escalation,) = await world.messages("escalation")
    assert escalation.to_agent == world.rt.agent("concierge").agent_id
    assert "proposed by lead ended without a decision (closed early by lead)" in (
        escalation.content
    )
    assert "1 of 3 voters voted; not voted: lead, bob." in escalation.content


async def test_the_last_two_votes_cast_at_once_resolve_the_vote_once(
    lk: Loomkin, project: Path
) -> None:
    world, lead, alice, bob = await _team(lk, project)
    vote_id = await _propose(world, alice, "majority")
    await world.call(alice, "cast_vote", vote_id=vote_id, option="redis", confidence=1.0)
    # Both casts are in flight at once: the second waits for the first, and only it resolves.
    results = await asyncio.gather(
        world.call(bob, "cast_vote", vote_id=vote_id, option="redis", confidence=1.0),
        world.call(lead, "cast_vote", vote_id=vote_id, option="memory", confidence=0.5),
    )

    assert [r.split(" (")[0] for r in results] == [
        f"Voted 'redis' in {vote_id}",
        f"Voted 'memory' in {vote_id}",
    ]
    resolved = await _resolved(world)
    assert (resolved.outcome, resolved.reason) == ("decided", "every voter voted")


async def test_a_vote_still_being_committed_at_the_deadline_is_counted(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, _lead, alice, bob = await _team(lk, project)
    vote_id = await _propose(world, alice, "majority")
    await world.call(alice, "cast_vote", vote_id=vote_id, option="memory", confidence=0.5)
    store_append = event_store(lk).append

    async def slow_append(
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
        fences: Sequence[Fence] = (),
    ) -> list[RecordedEvent]:
        # A busy store: bob's ballot is still being written when the deadline passes.
        if any(isinstance(new.event, VoteCast) for new in events):
            await asyncio.sleep(2)
        return await store_append(events, expected_versions=expected_versions, fences=fences)

    monkeypatch.setattr(event_store(lk), "append", slow_append)
    await asyncio.sleep(59)
    result = await world.call(bob, "cast_vote", vote_id=vote_id, option="redis", confidence=1.0)
    await asyncio.sleep(1)  # the deadline's resolve, waiting since t=60, now appends

    assert result.startswith(f"Voted 'redis' in {vote_id}")
    resolved = await _resolved(world)
    assert resolved.reason == "the deadline passed"
    assert resolved.counts == {"redis": 1, "memory": 1}  # bob was told "Voted": it counted
