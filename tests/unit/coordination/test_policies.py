"""Pure coordination policies: vote weights and tallies, relevance, loop and stuck detection."""

from __future__ import annotations

import pytest

from loomkin.bench.rebalancer import CORPUS, run_rebalancer
from loomkin.coordination import (
    Profile,
    RebalancerSettings,
    Topic,
    Watcher,
    expertise,
    score,
    tally,
    weight,
)
from loomkin.coordination.conflicts import intent_of, targets_of
from loomkin.coordination.votes import Ballot
from loomkin.core.events import AgentStatusChanged, TaskAssigned, ToolCallStarted
from loomkin.ids import AgentId, CallId, SessionId, TaskId

S = SessionId("s")


def test_weight_follows_the_formula() -> None:
    assert expertise("coder", "code") == 2.0
    assert expertise("coder", "general") == 1.0
    assert expertise("tester", "test") == 1.5
    assert expertise("tester", "architecture") == 0.5
    assert weight("coder", "code", 0.5, 0.9) == pytest.approx(2.0 * (0.5 + 0.125 + 0.225))


def test_tally_weighs_votes_and_breaks_ties_deterministically() -> None:
    ballots = [Ballot(voter="a", option="x", weight=1.7), Ballot(voter="b", option="y", weight=0.8)]
    t = tally(["x", "y"], ballots, "majority", 2)
    assert (t.winner, t.quorum_met) == ("x", True)
    tie = [Ballot(voter="a", option="y", weight=1.0), Ballot(voter="b", option="x", weight=1.0)]
    assert tally(["x", "y"], tie, "majority", 2).winner == "x"  # listed first
    assert not tally(["x", "y"], tie, "majority", 2).quorum_met  # 50 % is not a majority
    assert not tally(["x", "y"], ballots, "unanimous", 2).quorum_met
    assert not tally(["x", "y"], [], "majority", 2).quorum_met


def test_relevance_selects_the_agent_working_on_the_file() -> None:
    topic = Topic(text="app.py hello() must return str", kind="bug", files=frozenset({"app.py"}))
    on_file = Profile(role="coder", task_text="Add a shout flag to app.py")
    elsewhere = Profile(role="coder", task_text="Rewrite the README.md intro")
    assert score(topic, on_file) >= 0.3 > score(topic, elsewhere)


def test_approach_intents() -> None:
    assert intent_of("Remove the legacy parser") == "remove"
    assert intent_of("Refactor parse() in lib/parser.py") == "change"
    assert "lib/parser.py" in targets_of("Refactor parse() in lib/parser.py")


def _call(agent: str, n: int, tool: str, path: str) -> ToolCallStarted:
    return ToolCallStarted(
        session_id=S,
        agent_id=AgentId(agent),
        call_id=CallId(f"c{n}"),
        tool=tool,
        arguments={"path": path},
    )


def test_watcher_tells_loops_from_test_fix_chains() -> None:
    w = Watcher(RebalancerSettings())
    w.observe(
        AgentStatusChanged(session_id=S, agent_id=AgentId("a"), status="thinking", previous="idle"),
        0,
    )
    for i in range(6):
        w.observe(_call("a", 2 * i, "shell", "pytest"), 10 * i)
        w.observe(_call("a", 2 * i + 1, "file_edit", f"v{i}"), 10 * i + 5)
    assert w.findings(70) == []
    for i in range(3):
        w.observe(_call("a", 100 + i, "file_read", "app.py"), 80 + i)
    [finding] = w.findings(90)
    assert finding.problem == "loop"


def test_watcher_finds_stuck_agents_and_ping_pong() -> None:
    w = Watcher(RebalancerSettings(stuck_after_s=300))
    w.observe(
        AgentStatusChanged(session_id=S, agent_id=AgentId("a"), status="thinking", previous="idle"),
        0,
    )
    assert w.findings(299) == []
    assert [f.problem for f in w.findings(301)] == ["stuck"]
    for i, owner in enumerate("bcbc"):
        w.observe(
            TaskAssigned(session_id=S, task_id=TaskId("t"), owner=AgentId(owner), owner_name=owner),
            400 + i,
        )
    assert [f.problem for f in w.findings(410) if f.agent_id == "c"] == ["ping_pong"]


def test_benchmark_corpus_has_no_false_positives() -> None:
    result = run_rebalancer()
    assert result["trajectories"] == len(CORPUS)
    assert result["false_positives"] == 0
    assert result["false_negatives"] == 1  # the drifting search: a documented miss
