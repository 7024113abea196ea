"""The conflict detector's approach and decision rules (notes §9), and how conflicts reach agents.

* Approach: intent classes remove / add / change (first class whose verb appears wins);
  targets are file paths, dotted names, ``name()`` calls and ``fun/arity`` references; two
  active tasks of different agents conflict iff they share a target and their intents are
  add↔remove or remove↔change (add↔change is not a conflict).
* Decision: two decisions of different agents of a team conflict iff their titles share at
  least two significant words and their choices differ (a missing choice counts as different).
* Every conflict is one ``ConflictDetected`` event, an urgent ``file_conflict`` message to each
  agent involved and a ``conflict_detected`` message to their lead, in readable text; a pair
  is reported once.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import pytest

from loomkin.coordination.conflicts import intent_of, targets_of
from loomkin.core.events import ConflictDetected, DecisionLogged, Event
from loomkin.ids import DecisionId, new_id
from loomkin.testing.internals import event_log

from .conftest import World, open_world

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.agent import Agent
    from loomkin.core.events import JSON
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

_ID = re.compile(r"\b(?:agent|task|team|dec|conf|msg)_[0-9a-f]{6,}")


# -- the pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        *[(f"{verb.capitalize()} the legacy parser", "remove") for verb in ("remove", "delete")],
        *[(f"{verb} the legacy parser", "remove") for verb in ("drop", "deprecate")],
        *[
            (f"{verb} a rate limiter", "add")
            for verb in ("add", "create", "write", "implement", "build")
        ],
        *[
            (f"{verb} the rate limiter", "change")
            for verb in ("change", "refactor", "rename", "move", "migrate", "replace")
        ],
        ("Update the docs", "change"),
        ("Rewrite the parser", "change"),  # "rewrite" is not "write"
        ("Removing dead code", "remove"),  # inflections count
        ("Dropped the cache", "remove"),
        ("Adds a flag", "add"),
        ("Replace the parser and remove the old one", "remove"),  # first class in order wins
        ("Add tests, then refactor", "add"),
        ("Look into the parser", "unknown"),
        ("Address the review comments", "unknown"),  # "address" is not "add"
    ],
)
def test_intent_classes(text: str, intent: str) -> None:
    assert intent_of(text) == intent


def test_targets_are_paths_dotted_names_calls_and_arities() -> None:
    text = "Refactor parse() and parse/2 in lib/parser.py, used by app.models.User (e.g. here)"
    assert targets_of(text) == {"lib/parser.py", "parse", "parse/2", "app.models.User"}
    # A file's name is not a module name of its own: two parser.py files are two targets.
    assert targets_of("src/a/parser.py") & targets_of("src/b/parser.py") == set()
    assert targets_of("Tidy up the code, i.e. rename things") == set()


# -- approach conflicts in a session --------------------------------------------------------------


async def _pair(lk: Loomkin, project: Path) -> tuple[World, Agent, Agent]:
    world = await open_world(lk, project, busy=frozenset({"alice", "bob"}))
    await world.agent("lead", "lead")
    alice = await world.agent("alice")
    bob = await world.agent("bob")
    return world, alice, bob


async def _conflicts(world: World) -> list[ConflictDetected]:
    await asyncio.sleep(1)  # virtual: the detector reports from a timer
    return [e for e in await world.events("conflict_detected") if isinstance(e, ConflictDetected)]


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("Remove lib/parser.py", "Add a strict mode to lib/parser.py", "lib/parser.py"),
        ("Add caching to app.models.User", "Delete app.models.User", "app.models.User"),
        ("Refactor parse/2 for speed", "Drop parse/2, nobody calls it", "parse/2"),
        ("Deprecate load_config()", "Rename load_config() to read_config()", "load_config"),
    ],
    ids=["remove-add-path", "add-remove-module", "change-remove-arity", "remove-change-call"],
)
async def test_contradictory_intents_on_a_shared_target_conflict(
    lk: Loomkin, project: Path, first: str, second: str, shared: str
) -> None:
    world, alice, bob = await _pair(lk, project)
    await world.assign(alice, first)
    await world.assign(bob, second)

    (conflict,) = await _conflicts(world)
    assert conflict.conflict_type == "approach"
    assert conflict.agents == (bob.agent_id, alice.agent_id)  # the newly assigned one first
    assert shared in conflict.description
    assert f"bob's task {second!r}" in conflict.description
    assert f"alice's task {first!r}" in conflict.description


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Add a --verbose flag to cli.py", "Refactor cli.py into subcommands"),  # add↔change
        ("Refactor cli.py into subcommands", "Add a --verbose flag to cli.py"),  # change↔add
        ("Refactor lib/parser.py", "Rewrite lib/parser.py"),  # same intent
        ("Add lib/new.py", "Add more to lib/new.py"),  # same intent
        ("Remove lib/old.py", "Add tests to lib/new.py"),  # nothing shared
        ("Look into lib/parser.py", "Remove lib/parser.py"),  # unknown intent
        ("Remove the old parser", "Add a strict mode to the parser"),  # no target at all
    ],
    ids=["add-change", "change-add", "change-change", "add-add", "no-shared", "unknown", "none"],
)
async def test_compatible_or_unrelated_tasks_do_not_conflict(
    lk: Loomkin, project: Path, first: str, second: str
) -> None:
    world, alice, bob = await _pair(lk, project)
    await world.assign(alice, first)
    await world.assign(bob, second)
    assert await _conflicts(world) == []


async def test_one_agents_own_tasks_and_finished_tasks_do_not_conflict(
    lk: Loomkin, project: Path
) -> None:
    world, alice, bob = await _pair(lk, project)
    await world.assign(alice, "Remove lib/parser.py")
    await world.assign(alice, "Add a strict mode to lib/parser.py")  # the same owner
    assert await _conflicts(world) == []

    task_id = await world.assign(bob, "Delete app.models.User")
    await world.rt.ctx.tasks.set_status(task_id, "cancelled", note="test")
    await world.assign(alice, "Add caching to app.models.User")  # bob's task is over
    assert await _conflicts(world) == []


async def test_an_approach_conflict_reaches_both_agents_urgently_and_their_lead(
    lk: Loomkin, project: Path
) -> None:
    world, alice, bob = await _pair(lk, project)
    lead = world.rt.agent("lead")
    await world.assign(alice, "Remove lib/parser.py")
    await world.assign(bob, "Add a strict mode to lib/parser.py")
    await _conflicts(world)

    urgent = await world.messages("file_conflict")
    assert sorted(m.to_agent or "" for m in urgent) == sorted([alice.agent_id, bob.agent_id])
    assert {m.tier for m in urgent} == {"urgent"}
    text = urgent[0].content
    assert text.startswith("Approach conflict: bob's task 'Add a strict mode to lib/parser.py'")
    assert "agree with the other agent (peer_message) on one approach" in text
    (to_lead,) = await world.messages("conflict_detected")
    assert (to_lead.to_agent, to_lead.tier) == (lead.agent_id, "high")
    await world.lk.wait_idle()
    assert "[Conflict detected]\nApproach conflict between bob, alice: bob's task" in (
        world.seen("lead")
    )
    for message in (*urgent, to_lead):
        assert not _ID.search(message.content), message.content  # names, never ids


async def test_an_approach_conflict_between_the_same_agents_is_reported_once(
    lk: Loomkin, project: Path
) -> None:
    world, alice, bob = await _pair(lk, project)
    await world.assign(alice, "Remove lib/parser.py")
    await world.assign(bob, "Add a strict mode to lib/parser.py")
    await world.assign(bob, "Add a lenient mode to lib/parser.py")
    assert len(await _conflicts(world)) == 1
    assert len(await world.messages("file_conflict")) == 2


# -- decision conflicts ---------------------------------------------------------------------------


def _decision(world: World, agent: Agent, title: str, **meta: JSON) -> DecisionLogged:
    return DecisionLogged(
        session_id=world.session.session_id,
        decision_id=DecisionId(new_id("dec_")),
        team_id=agent.team_id,
        node_type="decision",
        title=title,
        agent_id=agent.agent_id,
        metadata=dict(meta) or None,
    )


async def _decide(world: World, *events: Event) -> list[ConflictDetected]:
    for event in events:
        await event_log(world.lk).append(event)
    return await _conflicts(world)


async def test_decisions_sharing_two_words_with_different_choices_conflict(
    lk: Loomkin, project: Path
) -> None:
    world, alice, bob = await _pair(lk, project)
    lead = world.rt.agent("lead")
    (conflict,) = await _decide(
        world,
        _decision(world, alice, "Rate limiter storage: Redis"),
        _decision(world, bob, "Rate limiter storage: in-process memory"),
    )
    assert conflict.conflict_type == "decision"
    assert conflict.agents == (bob.agent_id, alice.agent_id)
    assert conflict.description == (
        "bob decided 'Rate limiter storage: in-process memory', which contradicts alice's "
        "decision 'Rate limiter storage: Redis'."
    )
    urgent = await world.messages("file_conflict")
    assert sorted(m.to_agent or "" for m in urgent) == sorted([alice.agent_id, bob.agent_id])
    assert all(m.content.startswith("Decision conflict: bob decided") for m in urgent)
    assert "which decision stands" in urgent[0].content
    (to_lead,) = await world.messages("conflict_detected")
    assert to_lead.to_agent == lead.agent_id
    assert to_lead.content.startswith("Decision conflict between bob, alice: bob decided")


async def test_an_explicit_different_choice_conflicts_and_the_same_choice_does_not(
    lk: Loomkin, project: Path
) -> None:
    world, alice, bob = await _pair(lk, project)
    same = await _decide(
        world,
        _decision(world, alice, "Cache backend choice", winner="redis"),
        _decision(world, bob, "Cache backend decided", chosen="redis"),
    )
    assert same == []
    different = await _decide(
        world, _decision(world, bob, "Cache backend settled", winner="memcached")
    )
    assert [c.agents for c in different] == [(bob.agent_id, alice.agent_id)]


async def test_decisions_that_do_not_overlap_enough_do_not_conflict(
    lk: Loomkin, project: Path
) -> None:
    world, alice, bob = await _pair(lk, project)
    other_team = await world.team("web", world.root)
    wes = await world.agent("wes", team=other_team)
    conflicts = await _decide(
        world,
        _decision(world, alice, "Rate limiter uses a token bucket"),
        _decision(world, bob, "Rate of the deploys is weekly"),  # one word in common ("rate")
        _decision(world, bob, "The and for with limiter"),  # stop-words do not count
        _decision(world, alice, "Rate limiter uses a fixed window"),  # the same agent
        _decision(world, wes, "Rate limiter uses a sliding window"),  # another team
    )
    assert conflicts == []


async def test_a_decision_conflict_is_reported_once_per_pair(lk: Loomkin, project: Path) -> None:
    world, alice, bob = await _pair(lk, project)
    conflicts = await _decide(
        world,
        _decision(world, alice, "Rate limiter storage: Redis"),
        _decision(world, bob, "Rate limiter storage: memory"),
        _decision(world, bob, "Rate limiter storage: sqlite"),
    )
    assert len(conflicts) == 1
    assert len(await world.messages("file_conflict")) == 2
