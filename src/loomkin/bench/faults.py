"""Fault injection (issue #4): SIGKILL a scripted session at random points, restart, check.

How this works and why:

* **A fork server.** ``python -m loomkin.bench.faults`` (:func:`serve`) imports Loomkin once
  and forks a fresh process for every run the parent asks for (one line on stdin:
  ``RUN DB PROJECT SESSION|-``). The forked process has its own event loop, SQLite connection
  and shell children; it is the one the parent kills. Every line it prints starts with its run
  number, so the parent can ignore lines a killed run left in the pipe.
* **A run** opens the SQLite store, starts the session (``-``) or resumes it, makes sure two
  coders each have their task (idempotently: a run killed during setup is completed by the
  next one), waits until the session is idle and prints ``DONE`` with what the parent checks.
  Each coder appends three lines to ``side.txt`` with the real ``shell`` tool (the side
  effect a re-run would duplicate), then completes its task. A log listener prints one ``EV``
  line per committed event.
* **The parent** (:class:`Server`, :func:`attempt`, :func:`run_faults`) kills a run with
  SIGKILL after a random number of ``EV`` lines (never after a fixed sleep), resumes the
  session in a new run (possibly killing that one too), and finally lets it finish.

Checked per trial: no tool call started twice, no side-effect line written twice, both tasks
completed, and no acknowledged event lost (every ``EV`` line the parent saw, from every run,
is in the final log). The integration test ``tests/integration/test_fault_injection.py``
drives the same server (50 trials in CI); ``python -m loomkin.bench faults`` runs more.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import RecordedEvent, ToolCallCompleted, ToolCallStarted
from loomkin.errors import UserError
from loomkin.service import Loomkin, Session
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loomkin.llm.model import Model, ModelRequest

__all__ = [
    "MAX_ATTEMPTS",
    "FaultsResult",
    "Server",
    "attempt",
    "faults_table",
    "run_faults",
    "serve",
]

WORKERS = ("ann", "ben")
STEPS = 3
"""Shell calls (side-effect lines) per task before ``task_complete``."""
MAX_ATTEMPTS = 6
SETTINGS = SessionSettings(bootstrap_orienter=False)

FaultsResult = dict[str, float | int | dict[str, int] | list[str]]
"""The JSON object printed by ``python -m loomkin.bench faults --json``."""


# -- the child: one scripted session per run ---------------------------------------------------


def coder(request: ModelRequest) -> Reply:
    """Append STEPS lines (one shell call each) for the task in the brief, then complete it.

    A ``task_complete`` reported as interrupted is tried again (up to three times), as the
    interrupted result asks; a shell call is never repeated (its line may have been written).
    """
    brief_at = max(
        (
            i
            for i, m in enumerate(request.messages)
            if isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
        ),
        default=None,
    )
    if brief_at is None:
        return Reply(text="Nothing to do.")
    brief = request.messages[brief_at]
    assert isinstance(brief, UserMessage)
    title = brief.text.split()[2]
    results = [m for m in request.messages[brief_at:] if isinstance(m, ToolResultMessage)]
    shells = sum(1 for m in results if m.name == "shell")
    if shells < STEPS:  # an interrupted line is not written again: it may have landed
        line = f"{title}-{shells + 1}"
        return Reply(tool_calls=[Call("shell", {"command": f"echo {line} >> side.txt"})])
    completes = [m for m in results if m.name == "task_complete"]
    if not completes or (completes[-1].content.startswith("interrupted") and len(completes) < 3):
        # Like a model told "check the current state before retrying": completing is safe to
        # retry (a task completed already answers with an error, and the model stops).
        return Reply(
            tool_calls=[Call("task_complete", {"result": f"{title}: {STEPS} lines appended"})]
        )
    said = sum(1 for m in request.messages[brief_at:] if isinstance(m, AssistantMessage))
    return Reply(text=f"{title} finished ({said}).")


def factory(_role: object, name: str) -> Model:
    """Every agent of the session runs :func:`coder`."""
    return FunctionModel(coder, name=f"scripted:{name}")


async def ensure_work(session: Session) -> None:
    """Spawn the coders and create and assign their tasks, unless an earlier run did."""
    agents = {a.name for a in session.agents()}
    for name in WORKERS:
        if name not in agents:
            await session.spawn_agent(name, "coder")
        title = f"task-{name}"
        task = next((t for t in session.tasks() if t.title == title), None)
        task_id = task.task_id if task is not None else await session.create_task(title)
        if session.task(task_id).owner_id is None:
            await session.assign_task(task_id, name, by="test")


async def scenario(run: str, db: str, project: str, session_id: str) -> None:
    """One run: start or resume the session, ensure the work, wait, print ``DONE``."""
    policy = PermissionPolicy(auto_approve=frozenset({"*"}))
    async with await Loomkin.open(f"sqlite:///{db}") as lk:
        if session_id == "-":
            session = await lk.open_session(
                project, model_factory=factory, settings=SETTINGS, policy=policy
            )
            print(f"{run} SESSION {session.session_id}", flush=True)
        else:
            session = await lk.resume_session(
                session_id, model_factory=factory, settings=SETTINGS, policy=policy
            )
        async with asyncio.TaskGroup() as group:
            printer = group.create_task(_print_events(run, session))
            await ensure_work(session)
            await session.wait_idle()
            printer.cancel()
        print(f"{run} DONE {json.dumps(await report(session))}", flush=True)


async def _print_events(run: str, session: Session) -> None:
    """One ``EV`` line per committed event (the parent kills at a random one)."""
    async with session.events(after=None) as events:
        async for recorded in events:
            print(f"{run} EV {recorded.event.kind}", flush=True)


async def report(session: Session) -> dict[str, object]:
    """What the parent checks: tasks, tool calls started twice, outcomes, events in the log."""
    events: list[RecordedEvent] = await session.history()
    started = collections.Counter(
        r.event.call_id for r in events if isinstance(r.event, ToolCallStarted)
    )
    outcomes = collections.Counter(
        r.event.outcome for r in events if isinstance(r.event, ToolCallCompleted)
    )
    return {
        "tasks": {t.title: t.status for t in session.tasks()},
        "started": sum(started.values()),
        "started_twice": [c for c, n in started.items() if n > 1],
        "outcomes": dict(outcomes),
        "events": len(events),
    }


def child(run: str, db: str, project: str, session_id: str) -> None:
    """The forked process: run the scenario, print ``FAIL`` on error, exit without cleanup."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the shell tool waits for its children
    print(f"{run} PID {os.getpid()}", flush=True)
    code = 0
    try:
        asyncio.run(scenario(run, db, project, session_id))
    except BaseException:
        print(f"{run} FAIL {json.dumps(traceback.format_exc())}", flush=True)
        code = 1
    finally:
        sys.stdout.flush()
        os._exit(code)


def serve() -> None:
    """The fork server's main loop: one forked run per line on stdin."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished and killed runs are reaped for us
    while line := sys.stdin.readline():
        run, db, project, session_id = line.split()
        Path(project).mkdir(parents=True, exist_ok=True)
        if os.fork() == 0:
            child(run, db, project, session_id)


# -- the parent ---------------------------------------------------------------------------------


class Server:
    """The fork server (``python -m loomkin.bench.faults``) and the lines its runs print."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loomkin.bench.faults"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.runs = 0

    def start(self, db: Path, project: Path, session_id: str) -> str:
        """Ask for a run; returns its number."""
        assert self.proc.stdin is not None
        self.runs += 1
        self.proc.stdin.write(f"{self.runs} {db} {project} {session_id}\n")
        self.proc.stdin.flush()
        return str(self.runs)

    def lines(self, run: str) -> Iterator[tuple[str, str]]:
        """Yield ``(tag, rest)`` of the lines of ``run`` (stale lines of killed runs skipped)."""
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            number, tag, *rest = line.rstrip("\n").split(" ", 2)
            if number == run:
                yield tag, rest[0] if rest else ""
        raise RuntimeError("the fork server exited")

    def close(self) -> None:
        """Close stdin (the server's loop ends) and wait for it."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@dataclass(slots=True)
class Attempt:
    """How one run ended."""

    session_id: str
    report: dict[str, object] | None
    """The ``DONE`` report, or ``None`` when the run was killed."""
    killed: bool
    events_seen: int
    """``EV`` lines (committed events) the parent saw from this run."""


def attempt(
    server: Server, db: Path, project: Path, session_id: str, kill_after: int | None
) -> Attempt:
    """Run once; SIGKILL the run after ``kill_after`` event lines (``None``: let it finish)."""
    run = server.start(db, project, session_id)
    pid = 0
    seen = 0
    for tag, rest in server.lines(run):
        if tag == "PID":
            pid = int(rest)
        elif tag == "SESSION":
            session_id = rest
        elif tag == "FAIL":
            raise RuntimeError(f"run {run} failed:\n{json.loads(rest)}")
        elif tag == "DONE":
            return Attempt(session_id, json.loads(rest), killed=False, events_seen=seen)
        elif tag == "EV":
            seen += 1
        if kill_after is not None and seen >= kill_after and session_id != "-":
            os.kill(pid, signal.SIGKILL)
            return Attempt(session_id, None, killed=True, events_seen=seen)
    raise AssertionError("unreachable")


@dataclass(slots=True, kw_only=True)
class Trial:
    """One trial: kill the session 1–3 times, then let it finish."""

    kills: int = 0
    runs: int = 0
    events_seen: int = 0
    report: dict[str, object] | None = None
    side_lines: list[str] = field(default_factory=list)

    def duplicates(self) -> list[str]:
        """Side-effect lines written more than once."""
        return [x for x, c in collections.Counter(self.side_lines).items() if c > 1]

    def outcomes(self) -> dict[str, int]:
        """Tool call outcomes in the final log (``ok``, ``interrupted``, ``skipped`` …)."""
        found = self.report.get("outcomes", {}) if self.report else {}
        return dict(found) if isinstance(found, dict) else {}


def run_trial(server: Server, root: Path, trial: int, rng: random.Random) -> Trial:
    """Kill the first run (and sometimes the resumed ones) at random points, then finish."""
    db, project = root / f"t{trial}.db", root / f"p{trial}"
    session_id = "-"
    result = Trial()
    kill_count = rng.choice((1, 1, 2, 3))  # kill the first run, sometimes resumes too
    for n in range(MAX_ATTEMPTS):
        kill_after = rng.randint(1, 110) if n < kill_count else None
        run = attempt(server, db, project, session_id, kill_after)
        session_id = run.session_id
        result.runs += 1
        result.kills += run.killed
        result.events_seen += run.events_seen
        if run.report is not None:
            result.report = run.report
            break
    side = project / "side.txt"
    result.side_lines = side.read_text().split() if side.exists() else []
    return result


def _summary(trials: list[Trial], wall_s: float) -> FaultsResult:
    outcomes: collections.Counter[str] = collections.Counter()
    for t in trials:
        outcomes.update(t.outcomes())
    reports = [t.report for t in trials if t.report is not None]
    want = {f"task-{w}": "completed" for w in WORKERS}
    lost = [max(0, t.events_seen - _int(t.report, "events")) for t in trials if t.report]
    return {
        "trials": len(trials),
        "kills": sum(t.kills for t in trials),
        "runs": sum(t.runs for t in trials),
        "completed_runs": sum(1 for r in reports if r.get("tasks") == want),
        "unfinished_trials": sum(1 for t in trials if t.report is None),
        "duplicate_tool_calls": sum(len(_list(r, "started_twice")) for r in reports),
        "duplicate_side_effects": sum(len(t.duplicates()) for t in trials),
        "missing_side_effects": sum(
            1 for t in trials if len(t.side_lines) < t.outcomes().get("ok", 0) - len(WORKERS)
        ),
        "acknowledged_events_lost": sum(lost),
        "interrupted_calls_reported": outcomes.get("interrupted", 0),
        "tool_outcomes": dict(outcomes),
        "events_seen": sum(t.events_seen for t in trials),
        "wall_s": round(wall_s, 3),
        "trials_per_s": round(len(trials) / wall_s, 3) if wall_s > 0 else 0.0,
    }


def _int(report: dict[str, object] | None, key: str) -> int:
    value = report.get(key, 0) if report else 0
    return value if isinstance(value, int) else 0


def _list(report: dict[str, object], key: str) -> list[object]:
    value = report.get(key, [])
    return list(value) if isinstance(value, list) else []


def run_faults(*, trials: int = 200, seed: int = 20240604) -> FaultsResult:
    """Run ``trials`` SIGKILL trials on one fork server; return the JSON object.

    Raises:
        UserError: ``trials`` is below 1.
    """
    if trials < 1:
        raise UserError(f"faults needs at least 1 trial, got {trials}")
    rng = random.Random(seed)
    started = time.perf_counter()
    server = Server()
    done: list[Trial] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            done.extend(run_trial(server, Path(tmp), i, rng) for i in range(trials))
    finally:
        server.close()
    return _summary(done, time.perf_counter() - started)


_ROWS = (
    ("trials", "trials"),
    ("kills", "SIGKILLs"),
    ("runs", "runs (killed + resumed + final)"),
    ("completed_runs", "trials whose tasks all completed"),
    ("unfinished_trials", "trials that never finished"),
    ("duplicate_tool_calls", "tool calls started twice (must be 0)"),
    ("duplicate_side_effects", "side-effect lines written twice (must be 0)"),
    ("missing_side_effects", "trials with a completed call's line missing (must be 0)"),
    ("acknowledged_events_lost", "acknowledged events lost (must be 0)"),
    ("interrupted_calls_reported", "calls reported to the model as interrupted"),
    ("wall_s", "wall time, s"),
)


def faults_table(result: FaultsResult) -> str:
    """A markdown table of the fault-injection figures."""
    lines = ["| figure | value |", "| --- | ---: |"]
    lines += [f"| {label} | {result[key]} |" for key, label in _ROWS]
    lines.append("")
    lines.append(f"Tool call outcomes: {json.dumps(result['tool_outcomes'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    serve()
