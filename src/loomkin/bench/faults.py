"""Fault injection (issues #4, #15): SIGKILL scripted sessions anywhere, run two at once, check.

How this works and why:

* **Runs in forked processes.** ``python -m loomkin.bench.faults`` is a fork server
  (:mod:`loomkin.bench.faults_child`): each run of a session is a fresh process the parent can
  SIGKILL. The scenario has four agents; three write lines to ``side.txt`` with the real
  ``shell`` tool (the side effect a re-run would duplicate) and complete their tasks, and the
  runs request controls along the way (pause and resume, steer, cancel, a forced pause of an
  idle agent), each once per trial.
* **Kills land everywhere.** The parent kills a run after a random number of committed events
  (one line per event, never after a fixed sleep) or right after a control's acknowledgement
  (before the agent can apply it); events of one decision share a batch, so some kills land
  after the first event of a batch the child printed; the figures count how many did.
* **Four kinds of trial.** ``kill``: kill the run 1–3 times, then let it finish. ``pair``:
  after a kill, two processes resume the session at the same moment. ``held``: while one
  process runs the session, a second resumes it (it must be refused, naming the holder).
  ``takeover``: a second process takes the session over from a running one (the first must be
  fenced: nothing it commits after that lands). Every trial ends with a run that finishes.
* **Checked from the final log** (read by the parent) and the lines the runs printed:
  acknowledged controls with no outcome, agents that started a model or tool call while
  paused (or after a restart, before a pause acknowledged earlier took effect), resumes that
  never took effect, tool calls started twice (the same attempt twice, or a non-idempotent
  call re-run), events a run saw committed that are missing, trials that never finished,
  decisions recorded by halves, and second writers admitted. All must be 0.

``tests/integration/test_fault_injection.py`` drives the same code with a few trials of each
kind on SQLite and on Postgres; ``python -m loomkin.bench faults`` runs more.
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
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from loomkin.agents.memory import INTERRUPTED
from loomkin.bench.faults_child import NOTES, WORKERS, serve
from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    ControlApplied,
    ControlDropped,
    ControlRequested,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    RecordedEvent,
    TaskCreated,
    TaskStatusChanged,
    ToolCallStarted,
)
from loomkin.errors import UserError
from loomkin.persistence import open_store

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "KINDS",
    "FaultsResult",
    "Server",
    "Trial",
    "faults_table",
    "run_faults",
    "run_trial",
]

Kind = Literal["kill", "pair", "held", "takeover"]
KINDS: tuple[Kind, ...] = ("kill", "pair", "held", "takeover")
MAX_RUNS = 8
"""Runs per trial at most (kills included) before the trial counts as unfinished."""
ACK_KILL = 0.35
"""Chance that a run is killed right after a control's acknowledgement line."""
NOT_REPEATABLE = frozenset({"shell", "task_complete"})
"""Tools whose calls must never start twice (not idempotent)."""

FaultsResult = dict[str, float | int | str | dict[str, int]]
"""The JSON object printed by ``python -m loomkin.bench faults --json``."""

_TERMINAL = ("DONE", "HELD", "LOST")


# -- the fork server and the runs it forks ------------------------------------------------------


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

    def start(self, store: str, project: Path, session_id: str, mode: str = "resume") -> str:
        """Ask for a run; returns its number."""
        assert self.proc.stdin is not None
        self.runs += 1
        self.proc.stdin.write(f"{self.runs} {store} {project} {session_id} {mode}\n")
        self.proc.stdin.flush()
        return str(self.runs)

    def lines(self) -> Iterator[tuple[str, str, str]]:
        """Yield ``(run, tag, rest)`` of every line the runs print."""
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            number, tag, *rest = line.rstrip("\n").split(" ", 2)
            yield number, tag, rest[0] if rest else ""
        raise RuntimeError("the fork server exited")

    def close(self) -> None:
        """Close stdin (the server's loop ends) and wait for it."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@dataclass(slots=True)
class Run:
    """What one run printed, and how it ended."""

    number: str
    kill_after: int | None = None
    """Kill it after this many ``EV`` lines (``None``: never by count)."""
    kill_on_ack: bool = False
    pid: int = 0
    session_id: str = ""
    epoch: int = 0
    replayed: int = -1
    """The newest position it replayed when it took the session (-1: it never did)."""
    events: list[tuple[int, str]] = field(default_factory=list)
    """``(position, event_id)`` of every event it saw committed."""
    acks: list[tuple[str, str, str]] = field(default_factory=list)
    """``(action, agent, request_id)`` of every control it had acknowledged."""
    end: str = ""
    """``DONE``, ``HELD``, ``LOST``, or ``KILLED``."""
    killed_on_ack: bool = False

    @property
    def over(self) -> bool:
        return bool(self.end)

    def take(self, tag: str, rest: str) -> bool:
        """Fold one line; ``True`` when the parent should kill the run now."""
        match tag:
            case "PID":
                self.pid = int(rest)
            case "SESSION":
                self.session_id = rest
            case "LEASE":
                epoch, replayed = rest.split()
                self.epoch, self.replayed = int(epoch), int(replayed)
            case "EV":
                position, event_id, _kind = rest.split(" ", 2)
                self.events.append((int(position), event_id))
                return self.kill_after is not None and len(self.events) >= self.kill_after
            case "ACK":
                action, agent, request_id = rest.split()
                self.acks.append((action, agent, request_id))
                if self.kill_on_ack:
                    self.killed_on_ack = True
                    return True
            case "FAIL":
                raise RuntimeError(f"run {self.number} failed:\n{json.loads(rest)}")
            case "DONE" | "HELD" | "LOST":
                self.end = tag
            case _:
                pass  # SKIP: a control another control made moot (printed for the record)
        return False

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.end = "KILLED"


def watch(server: Server, runs: dict[str, Run], until: Run | None = None) -> None:
    """Read lines until every run in ``runs`` is over (or ``until`` is), killing as planned."""
    for number, tag, rest in server.lines():
        run = runs.get(number)
        if run is None or run.over:
            continue  # a stale line of a killed run, or of a run already settled
        if run.take(tag, rest) and run.pid and run.session_id:
            run.kill()
        if (until is not None and until.over) or all(r.over for r in runs.values()):
            return


# -- one trial ----------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Trial:
    """One trial's runs, its final log and its side-effect lines."""

    kind: Kind
    runs: list[Run] = field(default_factory=list)
    log: list[RecordedEvent] = field(default_factory=list)
    side_lines: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    """Worker → what its notes file holds at the end ("" when missing)."""
    admitted_early: int = 0
    """Runs that took the session while another process held it (``held`` trials)."""

    @property
    def finished(self) -> bool:
        return any(r.end == "DONE" for r in self.runs)


def run_trial(server: Server, store: str, project: Path, kind: Kind, rng: random.Random) -> Trial:
    """Run one trial of ``kind`` on ``store`` (see the module docstring)."""
    trial = Trial(kind=kind)
    session_id = "-"

    def single(mode: str = "resume", *, kill: bool) -> Run:
        nonlocal session_id
        run = Run(server.start(store, project, session_id, mode), session_id=_known(session_id))
        if kill:
            run.kill_after = rng.randint(1, 160)
            run.kill_on_ack = rng.random() < ACK_KILL
        trial.runs.append(run)
        watch(server, {run.number: run})
        session_id = run.session_id or session_id
        return run

    for _ in range(rng.choice((1, 1, 2, 3)) if kind == "kill" else 1):
        single(kill=True)
    if kind == "pair":
        a = Run(server.start(store, project, session_id), session_id=_known(session_id))
        b = Run(server.start(store, project, session_id), session_id=_known(session_id))
        trial.runs += [a, b]
        watch(server, {a.number: a, b.number: b})
    elif kind in ("held", "takeover"):
        _second(server, store, project, session_id, trial, rng)
    while not trial.finished and len(trial.runs) < MAX_RUNS:
        single(kill=False)
    return trial


def _known(session_id: str) -> str:
    return "" if session_id == "-" else session_id


def _second(
    server: Server, store: str, project: Path, session_id: str, trial: Trial, rng: random.Random
) -> None:
    """Start a second process while a first one runs the session (``held``, ``takeover``)."""
    first = Run(server.start(store, project, session_id), session_id=session_id)
    trial.runs.append(first)
    runs = {first.number: first}
    wait_events = rng.randint(0, 40)
    second: Run | None = None
    for number, tag, rest in server.lines():
        run = runs.get(number)
        if run is None or run.over:
            continue
        run.take(tag, rest)
        if run is second and tag == "LEASE" and trial.kind == "held" and not first.over:
            trial.admitted_early += 1  # it took the session while the first still ran it
        if second is None and first.replayed >= 0 and len(first.events) >= wait_events:
            mode = "takeover" if trial.kind == "takeover" else "resume"
            second = Run(server.start(store, project, session_id, mode), session_id=session_id)
            trial.runs.append(second)
            runs[second.number] = second
        if all(r.over for r in runs.values()):
            return


# -- what a trial shows -------------------------------------------------------------------------


def analyse(trial: Trial) -> dict[str, int]:
    """The trial's figures (see :data:`_ROWS`); the ``must be 0`` ones name violations."""
    log = trial.log
    figures = collections.Counter[str]()
    _count_lost_events(trial, figures)
    _count_duplicates(log, figures)
    _count_model_calls(log, figures)
    _count_controls(trial, figures)
    _count_paused_runs(trial, figures)
    _count_half_decisions(log, figures)
    _count_second_writers(trial, figures)
    tasks = _task_statuses(log)
    done = all(tasks.get(f"task-{w}") == "completed" for w in ("ann", "ben")) and tasks.get(
        "task-cal"
    ) in ("completed", "cancelled")
    figures["unfinished_runs"] += int(not (trial.finished and done))
    # A whole-content write that was interrupted is run again: it must have landed.
    figures["lost_writes"] += sum(
        1 for w in WORKERS if tasks.get(f"task-{w}") == "completed" and trial.notes[w] != NOTES
    )
    figures["duplicate_side_effects"] += sum(
        n - 1 for n in collections.Counter(trial.side_lines).values() if n > 1
    )
    figures["kills"] += sum(1 for r in trial.runs if r.end == "KILLED")
    figures["kills_after_ack"] += sum(1 for r in trial.runs if r.killed_on_ack)
    figures["kills_inside_a_batch"] += _kills_inside_batches(trial)
    figures["runs_refused_held"] += sum(1 for r in trial.runs if r.end == "HELD")
    figures["runs_fenced_lost"] += sum(1 for r in trial.runs if r.end == "LOST")
    return {key: 0 for key, _label in _ROWS} | dict(figures)


def _count_lost_events(trial: Trial, figures: collections.Counter[str]) -> None:
    stored = {r.event_id for r in trial.log}
    seen = {event_id for run in trial.runs for _, event_id in run.events}
    figures["events_seen"] += len(seen)
    figures["lost_events"] += len(seen - stored)


def _count_duplicates(log: list[RecordedEvent], figures: collections.Counter[str]) -> None:
    attempts = collections.Counter[tuple[str, int]]()
    for recorded in log:
        event = recorded.event
        if isinstance(event, ToolCallStarted):
            attempts[(event.call_id, event.attempt)] += 1
            if event.attempt > 1:
                figures["idempotent_reruns"] += 1
                figures["duplicate_tool_calls"] += event.tool in NOT_REPEATABLE
    figures["duplicate_tool_calls"] += sum(n - 1 for n in attempts.values() if n > 1)


def _count_model_calls(log: list[RecordedEvent], figures: collections.Counter[str]) -> None:
    """Model calls a kill cut off: each must be closed (and retried) when the run resumes."""
    open_calls: set[str] = set()
    for recorded in log:
        match recorded.event:
            case ModelCallStarted(call_id=call_id):
                open_calls.add(call_id)
            case (
                ModelCallCompleted(call_id=call_id)
                | ModelCallFailed(call_id=call_id, will_retry=False)
            ):
                open_calls.discard(call_id)
            case ModelCallFailed(error=error) if error.startswith(INTERRUPTED):
                figures["interrupted_model_calls"] += 1
            case _:
                pass
    figures["model_calls_left_open"] += len(open_calls)


def _count_controls(trial: Trial, figures: collections.Counter[str]) -> None:
    applied: dict[str, int] = {}
    outcome: set[str] = set()
    for recorded in trial.log:
        event = recorded.event
        if isinstance(event, ControlApplied):
            applied[event.request_id] = recorded.position
            outcome.add(event.request_id)
        elif isinstance(event, ControlDropped):
            outcome.add(event.request_id)
    statuses = _agent_statuses(trial.log)
    for run in trial.runs:
        for action, agent, request_id in run.acks:
            figures["controls_acknowledged"] += 1
            figures["acknowledged_controls_lost"] += request_id not in outcome
            if run.end == "KILLED" and request_id in applied:
                # Acknowledged, then the process died before it saw the control applied.
                seen = max((p for p, _ in run.events), default=0)
                figures["acked_then_killed_applied_later"] += applied[request_id] > seen
            if action == "resume":
                lost = request_id not in applied or statuses.get(agent) == "paused"
                figures["resumes_lost"] += lost


def _count_paused_runs(trial: Trial, figures: collections.Counter[str]) -> None:
    names = _names(trial.log)
    status: dict[str, str] = {}
    pause_at: dict[str, tuple[str, int]] = {}
    """Agent → (request id, position) of a pause requested and not applied yet."""
    restarts = sorted({r.replayed for r in trial.runs if r.replayed > 0})
    for recorded in trial.log:
        event = recorded.event
        match event:
            case AgentStatusChanged(agent_id=agent_id, status=new):
                status[agent_id] = new
            case ControlRequested(agent_id=agent_id, action="pause", request_id=rid):
                pause_at[agent_id] = (rid, recorded.position)
            case ControlApplied(agent_id=agent_id, action="pause" | "cancel" | "resume"):
                pause_at.pop(agent_id, None)
            case ControlDropped(agent_id=agent_id, action="pause"):
                pause_at.pop(agent_id, None)
            case ModelCallStarted(agent_id=agent_id) | ToolCallStarted(agent_id=agent_id):
                if status.get(agent_id) == "paused":
                    figures["paused_agents_ran"] += 1
                pending = pause_at.get(agent_id)
                # A pause acknowledged before a restart takes effect before the agent works.
                if pending is not None and any(
                    pending[1] <= r < recorded.position for r in restarts
                ):
                    figures["paused_agents_ran"] += 1
                    figures[f"ran_after_restart:{names.get(agent_id, agent_id)}"] += 1
            case _:
                pass


def _count_half_decisions(log: list[RecordedEvent], figures: collections.Counter[str]) -> None:
    """A pause applied without its status change in the same batch, and the like."""
    batches: dict[float, list[RecordedEvent]] = collections.defaultdict(list)
    for recorded in log:
        batches[recorded.recorded_at].append(recorded)
    status: dict[str, str] = {}
    for recorded in log:
        event = recorded.event
        batch = [r.event for r in batches[recorded.recorded_at]]
        if isinstance(event, ControlApplied) and event.action == "pause":
            paused = any(
                isinstance(e, AgentStatusChanged)
                and e.agent_id == event.agent_id
                and e.status == "paused"
                for e in batch
            )
            if status.get(event.agent_id) != "paused" and not paused:
                figures["half_recorded_decisions"] += 1
        elif isinstance(event, TaskStatusChanged) and event.status == "cancelled":
            figures["half_recorded_decisions"] += not any(
                isinstance(e, ControlApplied) and e.action == "cancel" for e in batch
            )
        if isinstance(event, AgentStatusChanged):
            status[event.agent_id] = event.status


def _count_second_writers(trial: Trial, figures: collections.Counter[str]) -> None:
    """A run that committed an event after another process had taken the session."""
    figures["second_writers_admitted"] += trial.admitted_early
    leased = [r for r in trial.runs if r.replayed >= 0]
    for early in leased:
        for late in leased:
            if late.epoch > early.epoch and any(p > late.replayed for p, _ in early.events):
                figures["second_writers_admitted"] += 1
    figures["two_process_trials"] += trial.kind != "kill"


def _kills_inside_batches(trial: Trial) -> int:
    """Kills whose last event seen was not the last of its batch (the rest was written too)."""
    at = {r.position: r for r in trial.log}
    count = 0
    for run in trial.runs:
        if run.end != "KILLED" or not run.events:
            continue
        last = max(p for p, _ in run.events)
        this, after = at.get(last), at.get(last + 1)
        count += this is not None and after is not None and this.recorded_at == after.recorded_at
    return count


def _names(log: list[RecordedEvent]) -> dict[str, str]:
    return {r.event.agent_id: r.event.name for r in log if isinstance(r.event, AgentSpawned)}


def _agent_statuses(log: list[RecordedEvent]) -> dict[str, str]:
    names = _names(log)
    statuses: dict[str, str] = {}
    for recorded in log:
        if isinstance(recorded.event, AgentStatusChanged):
            statuses[names.get(recorded.event.agent_id, "")] = recorded.event.status
    return statuses


def _task_statuses(log: list[RecordedEvent]) -> dict[str, str]:
    titles: dict[str, str] = {}
    statuses: dict[str, str] = {}
    for recorded in log:
        event = recorded.event
        if isinstance(event, TaskCreated):
            titles[event.task_id] = event.title
        elif isinstance(event, TaskStatusChanged):
            statuses[titles.get(event.task_id, "")] = event.status
    return statuses


async def _read_log(store: str) -> list[RecordedEvent]:
    opened = await open_store(store)
    try:
        return await opened.read()
    finally:
        await opened.close()


# -- many trials --------------------------------------------------------------------------------


def run_faults(
    *,
    trials: int = 300,
    postgres_trials: int = 0,
    postgres_url: str | None = None,
    seed: int = 20240604,
) -> FaultsResult:
    """Run SQLite trials (and Postgres ones, on ``postgres_url``); return the figures.

    Trials cycle through :data:`KINDS`, so each kind gets a quarter of them.

    Raises:
        UserError: no trial asked for, or Postgres trials without a server URL.
    """
    if trials < 0 or postgres_trials < 0 or trials + postgres_trials < 1:
        raise UserError(f"faults needs at least 1 trial, got {trials} + {postgres_trials}")
    if postgres_trials and not postgres_url:
        raise UserError("Postgres trials need a server URL (--postgres-url)")
    rng = random.Random(seed)
    started = time.perf_counter()
    totals: dict[str, collections.Counter[str]] = {
        "sqlite": collections.Counter(),
        "postgres": collections.Counter(),
    }
    server = Server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for i in range(trials):
                store = f"sqlite:///{root / f't{i}.db'}"
                trial = _one(server, store, root / f"p{i}", KINDS[i % len(KINDS)], rng)
                totals["sqlite"].update(analyse(trial))
                totals["sqlite"]["trials"] += 1
            for i in range(postgres_trials):
                assert postgres_url is not None
                with _scratch_schema(postgres_url) as store:
                    kind = KINDS[i % len(KINDS)]
                    trial = _one(server, store, root / f"q{i}", kind, rng)
                totals["postgres"].update(analyse(trial))
                totals["postgres"]["trials"] += 1
    finally:
        server.close()
    wall = time.perf_counter() - started
    result: FaultsResult = {"wall_s": round(wall, 1)}
    for backend, figures in totals.items():
        if figures["trials"]:
            result[backend] = dict(sorted(figures.items()))
    return result


def _one(server: Server, store: str, project: Path, kind: Kind, rng: random.Random) -> Trial:
    trial = run_trial(server, store, project, kind, rng)
    trial.log = asyncio.run(_read_log(store))
    side = project / "side.txt"
    trial.side_lines = side.read_text().split() if side.exists() else []
    for worker in WORKERS:
        notes = project / f"task-{worker}.md"
        trial.notes[worker] = notes.read_text() if notes.exists() else ""
    return trial


class _scratch_schema:
    """A fresh Postgres schema for one trial (dropped after it)."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.schema = f"loomkin_faults_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        joiner = "&" if "?" in self.server else "?"
        return f"{self.server}{joiner}schema={self.schema}"

    def __exit__(self, *_exc: object) -> None:
        import psycopg  # only the Postgres trials need the driver

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


_ROWS = (
    ("trials", "trials"),
    ("two_process_trials", "two-process trials (pair, held, takeover)"),
    ("kills", "SIGKILLs"),
    ("kills_after_ack", "… right after a control's acknowledgement"),
    ("acked_then_killed_applied_later", "… acknowledged controls applied after the restart"),
    ("kills_inside_a_batch", "… after the first event of a multi-event batch"),
    ("runs_refused_held", "second processes refused (LeaseHeld)"),
    ("runs_fenced_lost", "processes fenced after a take-over (StaleEpoch)"),
    ("controls_acknowledged", "controls acknowledged"),
    ("idempotent_reruns", "interrupted idempotent calls re-run"),
    ("interrupted_model_calls", "model calls cut off by a kill, closed and retried"),
    ("events_seen", "committed events seen by the runs"),
    ("acknowledged_controls_lost", "acknowledged controls lost (must be 0)"),
    ("paused_agents_ran", "paused agents that ran (after a restart or not) (must be 0)"),
    ("resumes_lost", "resumes lost (must be 0)"),
    ("duplicate_tool_calls", "duplicate tool calls (must be 0)"),
    ("model_calls_left_open", "model calls started and never ended (must be 0)"),
    ("duplicate_side_effects", "side-effect lines written twice (must be 0)"),
    ("lost_writes", "completed tasks whose (re-run) notes write is missing (must be 0)"),
    ("lost_events", "lost events (must be 0)"),
    ("unfinished_runs", "unfinished runs: trials that never finished their work (must be 0)"),
    ("half_recorded_decisions", "decisions recorded by halves (must be 0)"),
    ("second_writers_admitted", "second writers admitted (must be 0)"),
)
MUST_BE_ZERO = tuple(key for key, label in _ROWS if "(must be 0)" in label)


def faults_table(result: FaultsResult) -> str:
    """A markdown table of the figures, one column per backend."""
    backends = [b for b in ("sqlite", "postgres") if isinstance(result.get(b), dict)]
    lines = [
        "| figure | " + " | ".join(backends) + " |",
        "| --- |" + " ---: |" * len(backends),
    ]
    for key, label in _ROWS:
        cells = []
        for backend in backends:
            figures = result[backend]
            assert isinstance(figures, dict)
            value = figures.get(key, 0)
            cells.append(f"**{value}**" if key in MUST_BE_ZERO else str(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Wall time: {result['wall_s']} s")
    return "\n".join(lines)


if __name__ == "__main__":
    serve()
