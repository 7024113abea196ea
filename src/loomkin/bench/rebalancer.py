"""``python -m loomkin.bench rebalancer``: false positives and negatives of loop/stuck detection.

A small labelled corpus of scripted trajectories — healthy long chains (test → fix cycles,
long explorations, slow model calls, permission waits) and real problems (identical calls
repeated, A/B alternation, silent hangs, delegation ping-pong) — is turned into the same
events the runtime appends (``AgentStatusChanged``, ``ToolCallStarted``/``Completed``,
``TaskAssigned``) and fed, with their timestamps, to the rebalancer's
:class:`~loomkin.coordination.Watcher` (the detector the runtime uses), checked every 60 s as
in a session. A trajectory is flagged when any check during it finds a problem. The
"drifting search" case (distinct calls forever, no progress) is a known miss: nothing repeats
and the agent is never silent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.coordination import RebalancerSettings, Watcher
from loomkin.core.events import AgentStatusChanged, TaskAssigned, ToolCallCompleted, ToolCallStarted
from loomkin.ids import AgentId, CallId, SessionId, TaskId

if TYPE_CHECKING:
    from loomkin.core.events import Event

__all__ = ["CORPUS", "Trajectory", "main", "run_rebalancer"]

_S = SessionId("bench")
Step = tuple[float, str, str, dict[str, str]]
"""(seconds after the previous step, agent, tool or ``status:<s>``/``assign:<task>``, args)."""


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One scripted run with its label."""

    name: str
    problem: bool
    steps: tuple[Step, ...]


def _calls(agent: str, pairs: list[tuple[str, dict[str, str]]], gap: float) -> list[Step]:
    return [(gap, agent, tool, args) for tool, args in pairs]


def _healthy() -> list[Trajectory]:
    test = ("shell", {"command": "pytest -q"})
    fixes = []
    for i in range(8):
        fixes += [
            test,
            ("file_edit", {"path": "app.py", "old_string": f"v{i}", "new_string": f"v{i + 1}"}),
        ]
    explore = [("file_read", {"path": f"src/m{i}.py"}) for i in range(40)]
    grep = [("content_search", {"pattern": f"def f{i}"}) for i in range(25)]
    mixed = [
        ("file_read", {"path": "a.py"}),
        ("file_edit", {"path": "a.py", "old_string": "x", "new_string": "y"}),
        ("file_read", {"path": "a.py"}),
        ("file_edit", {"path": "a.py", "old_string": "y", "new_string": "z"}),
        ("file_read", {"path": "a.py"}),
        ("task_complete", {"result": "done"}),
    ]
    retry = [
        test,
        test,
        ("file_edit", {"path": "t.py", "old_string": "1", "new_string": "2"}),
        test,
    ]
    return [
        Trajectory(
            "test-fix cycles (16 steps)",
            False,
            ((0, "a", "status:thinking", {}), *_calls("a", fixes, 20)),
        ),
        Trajectory(
            "long exploration (40 reads)",
            False,
            ((0, "a", "status:thinking", {}), *_calls("a", explore, 15)),
        ),
        Trajectory(
            "search sweep (25 greps)",
            False,
            ((0, "a", "status:thinking", {}), *_calls("a", grep, 10)),
        ),
        Trajectory(
            "re-read after each edit",
            False,
            ((0, "a", "status:thinking", {}), *_calls("a", mixed, 30)),
        ),
        Trajectory(
            "retry once then fix", False, ((0, "a", "status:thinking", {}), *_calls("a", retry, 40))
        ),
        Trajectory(
            "slow model call (4 min)",
            False,
            (
                (0, "a", "status:thinking", {}),
                (240, "a", "file_read", {"path": "x.py"}),
                (30, "a", "status:idle", {}),
            ),
        ),
        Trajectory(
            "permission wait (20 min)",
            False,
            (
                (0, "a", "status:executing_tool", {}),
                (1, "a", "status:waiting_permission", {}),
                (1200, "a", "status:thinking", {}),
                (5, "a", "file_edit", {"path": "x.py", "old_string": "a", "new_string": "b"}),
            ),
        ),
        Trajectory(
            "idle for an hour",
            False,
            (
                (0, "a", "status:idle", {}),
                (3600, "a", "status:thinking", {}),
                (10, "a", "file_read", {"path": "x.py"}),
            ),
        ),
        Trajectory(
            "one hand-off and back",
            False,
            ((0, "a", "assign:t1", {}), (60, "b", "assign:t1", {}), (300, "a", "assign:t1", {})),
        ),
    ]


def _loops() -> list[Trajectory]:
    read = ("file_read", {"path": "app.py"})
    same_edit = ("file_edit", {"path": "app.py", "old_string": "zz", "new_string": "yy"})
    ab = [read, ("content_search", {"pattern": "hello"})] * 4
    failing = [("shell", {"command": "make build"})] * 5
    drifting = [("content_search", {"pattern": f"hello {i}"}) for i in range(30)]
    return [
        Trajectory(
            "same read x5", True, ((0, "a", "status:thinking", {}), *_calls("a", [read] * 5, 10))
        ),
        Trajectory(
            "A/B alternation", True, ((0, "a", "status:thinking", {}), *_calls("a", ab, 10))
        ),
        Trajectory(
            "failing build retried x5",
            True,
            ((0, "a", "status:thinking", {}), *_calls("a", failing, 30)),
        ),
        Trajectory(
            "same failed edit x4",
            True,
            ((0, "a", "status:thinking", {}), *_calls("a", [same_edit] * 4, 15)),
        ),
        Trajectory(
            "silent hang (thinking 10 min)",
            True,
            ((0, "a", "status:thinking", {}), (600, "a", "file_read", {"path": "x.py"})),
        ),
        Trajectory(
            "hang inside a tool (8 min)",
            True,
            (
                (0, "a", "status:thinking", {}),
                (5, "a", "shell", {"command": "serve"}),
                (480, "a", "status:idle", {}),
            ),
        ),
        Trajectory(
            "delegation ping-pong",
            True,
            (
                (0, "a", "assign:t1", {}),
                (30, "b", "assign:t1", {}),
                (30, "a", "assign:t1", {}),
                (30, "b", "assign:t1", {}),
            ),
        ),
        Trajectory(
            "drifting search, no progress (30)",
            True,
            ((0, "a", "status:thinking", {}), *_calls("a", drifting, 10)),
        ),
    ]


def _finished(t: Trajectory) -> Trajectory:
    """A healthy run ends: its agent goes idle (a problem run keeps going)."""
    agents = sorted({s[1] for s in t.steps})
    return Trajectory(t.name, t.problem, (*t.steps, *((5.0, a, "status:idle", {}) for a in agents)))


CORPUS: tuple[Trajectory, ...] = (*(_finished(t) for t in _healthy()), *_loops())


def _events(step: Step, n: int) -> list[Event]:
    _gap, agent, what, args = step
    aid = AgentId(agent)
    if what.startswith("status:"):
        status = what.removeprefix("status:")
        return [AgentStatusChanged(session_id=_S, agent_id=aid, status=status, previous="idle")]  # type: ignore[arg-type]  # corpus statuses are valid
    if what.startswith("assign:"):
        return [
            TaskAssigned(
                session_id=_S,
                task_id=TaskId(what.removeprefix("assign:")),
                owner=aid,
                owner_name=agent,
            )
        ]
    call = CallId(f"c{n}")
    return [
        ToolCallStarted(session_id=_S, agent_id=aid, call_id=call, tool=what, arguments=args),  # type: ignore[arg-type]  # JSON values
        ToolCallCompleted(session_id=_S, agent_id=aid, call_id=call, tool=what, result="ok"),
    ]


def flagged(trajectory: Trajectory, settings: RebalancerSettings) -> bool:
    """Replay ``trajectory`` into a watcher, checking every ``check_every_s``; any finding?"""
    watcher = Watcher(settings)
    now = next_check = 0.0
    for n, step in enumerate(trajectory.steps):
        target = now + step[0]
        while next_check + settings.check_every_s <= target:
            next_check += settings.check_every_s
            if watcher.findings(next_check):
                return True
        now = target
        for event in _events(step, n):
            watcher.observe(event, now)
    return bool(watcher.findings(now))


def run_rebalancer(settings: RebalancerSettings | None = None) -> dict[str, object]:
    """Run the corpus; return counts and the misclassified trajectories."""
    chosen = settings or RebalancerSettings()
    fp = [t.name for t in CORPUS if not t.problem and flagged(t, chosen)]
    fn = [t.name for t in CORPUS if t.problem and not flagged(t, chosen)]
    return {
        "trajectories": len(CORPUS),
        "healthy": sum(not t.problem for t in CORPUS),
        "problems": sum(t.problem for t in CORPUS),
        "false_positives": len(fp),
        "false_negatives": len(fn),
        "false_positive_names": fp,
        "false_negative_names": fn,
    }


def main(*, as_json: bool) -> None:
    """Print the result (one JSON object with ``as_json``)."""
    result = run_rebalancer()
    if as_json:
        print(json.dumps(result))
        return
    print(
        f"rebalancer: {result['trajectories']} trajectories ({result['healthy']} healthy, "
        f"{result['problems']} problems)\n"
        f"  false positives: {result['false_positives']} {result['false_positive_names']}\n"
        f"  false negatives: {result['false_negatives']} {result['false_negative_names']}"
    )
