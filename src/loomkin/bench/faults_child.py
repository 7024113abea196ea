"""The forked side of the fault-injection bench: one scripted run of a session per process.

How this works and why:

* **A fork server** (:func:`serve`, ``python -m loomkin.bench.faults``) imports Loomkin once and
  forks a fresh process for every run the parent asks for, one line on stdin:
  ``RUN STORE PROJECT SESSION|- MODE`` (``MODE``: ``resume`` or ``takeover``). The forked
  process has its own event loop, store connection and shell children; it is the one the
  parent kills. Every line it prints starts with its run number, so the parent can ignore
  lines a killed run left in the pipe.
* **A run** opens the store, starts the session (``-``) or resumes it (taking it over with
  ``takeover``), makes sure the workers have their tasks (idempotently: a run killed during
  set-up is completed by the next one), drives the controls (:class:`Driver`) and waits until
  nothing is left to do. Each worker appends :data:`STEPS` lines to ``side.txt`` with the real
  ``shell`` tool (the side effect a re-run would duplicate), then completes its task.
* **The controls**, each requested once per trial (whichever run gets there): pause ``ann``
  after her first line and resume her once the pause took effect; steer ``ben`` while at least
  two of his model calls remain; cancel ``cal``'s task after his first line; force-pause the
  idle ``dan`` and resume him. A requested control is never asked for again after a restart:
  the runtime must apply (or drop) the acknowledged one itself.
* **What it prints**: ``PID``, ``SESSION id``, ``LEASE epoch position`` (once it holds the
  session; ``position`` is the newest event it replayed), ``HELD`` (another live process
  holds the session), ``LOST`` (another process took it over), ``ACK action agent request``
  (a control is journaled: acknowledged), ``EV position event_id kind`` per committed event,
  ``DONE`` at the end, ``FAIL`` with a traceback on error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import (
    AgentSpawned,
    ControlApplied,
    ControlRequested,
    TaskStatusChanged,
    ToolCallCompleted,
)
from loomkin.errors import LeaseHeld, StaleEpoch, UserError
from loomkin.service import Loomkin, Session
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.core.events import RecordedEvent
    from loomkin.llm.model import Model, ModelRequest

__all__ = ["IDLE", "STEPS", "WORKERS", "Driver", "coder", "serve"]

WORKERS = ("ann", "ben", "cal")
"""Agents with a task of :data:`STEPS` shell lines."""
IDLE = "dan"
"""An agent without a task (force-paused while idle, then resumed)."""
STEPS = 4
"""Shell calls (side-effect lines) per task before ``task_complete``."""
SETTINGS = SessionSettings(bootstrap_orienter=False)
GUIDANCE = "keep every line short"
NOTES = "Plan: append the lines, read them back, complete the task.\n"
"""What each worker writes to ``<task title>.md`` first (a whole-content, idempotent write)."""


def coder(request: ModelRequest) -> Reply:
    """Write a notes file, append STEPS lines, read them back, then complete the task.

    The notes (``file_write`` of whole content) and the read-back (``file_read``) are
    idempotent: a crash during them makes the runtime run them again. A shell line is not:
    an interrupted one is not written again (it may have landed); an interrupted
    ``task_complete`` is tried again, as the interrupted result asks (a task completed already
    answers with an error, and the model stops).
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
    if not any(m.name == "file_write" for m in results):
        return Reply(tool_calls=[Call("file_write", {"path": f"{title}.md", "content": NOTES})])
    shells = sum(1 for m in results if m.name == "shell")
    if shells < STEPS:
        line = f"{title}-{shells + 1}"
        return Reply(tool_calls=[Call("shell", {"command": f"echo {line} >> side.txt"})])
    if not any(m.name == "file_read" for m in results):
        return Reply(tool_calls=[Call("file_read", {"path": "side.txt"})])
    completes = [m for m in results if m.name == "task_complete"]
    if not completes or (completes[-1].content.startswith("interrupted") and len(completes) < 3):
        return Reply(
            tool_calls=[Call("task_complete", {"result": f"{title}: {STEPS} lines appended"})]
        )
    said = sum(1 for m in request.messages[brief_at:] if isinstance(m, AssistantMessage))
    return Reply(text=f"{title} finished ({said}).")


def factory(_role: object, name: str) -> Model:
    """Every agent of the session runs :func:`coder`."""
    return FunctionModel(coder, name=f"scripted:{name}")


async def ensure_work(session: Session) -> None:
    """Spawn the agents and create and assign the workers' tasks, unless an earlier run did."""
    agents = {a.name for a in session.agents()}
    for name in (*WORKERS, IDLE):
        if name not in agents:
            await session.spawn_agent(name, "coder")
    for name in WORKERS:
        title = f"task-{name}"
        if not any(t.title == title for t in session.tasks()):
            await session.create_task(title, assign_to=name)  # created and given in one batch


class Driver:
    """Requests each control once per trial, when its moment has come (see the module docs)."""

    def __init__(self, run: str, session: Session) -> None:
        self.run = run
        self.session = session
        self.position = 0
        """The newest event this driver has looked at (and acted on)."""
        self._moved = asyncio.Condition()
        self.acked = 0
        """Controls this run requested (the caller waits for the driver to settle)."""
        self._names: dict[str, str] = {}
        self._requested: set[tuple[str, str]] = set()
        self._applied: set[tuple[str, str]] = set()
        self._lines: dict[str, int] = {}
        self._finished: set[str] = set()

    async def follow(self, replayed: int) -> None:
        """Fold every event of the session; act once caught up with the replayed history."""
        async with self.session.events(after=0) as events:
            async for recorded in events:
                self._see(recorded)
                if recorded.position >= replayed:
                    await self._act()
                async with self._moved:  # after acting: the run waits on it
                    self.position = recorded.position
                    self._moved.notify_all()

    async def reached(self, position: int) -> None:
        """Return once the driver looked at (and acted on) every event up to ``position``."""
        async with self._moved:
            await self._moved.wait_for(lambda: self.position >= position)

    def _see(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        match event:
            case AgentSpawned(agent_id=agent_id, name=name):
                self._names[agent_id] = name
            case ControlRequested(agent_id=agent_id, action=action):
                self._requested.add((self._names.get(agent_id, ""), action))
            case ControlApplied(agent_id=agent_id, action=action):
                self._applied.add((self._names.get(agent_id, ""), action))
            case ToolCallCompleted(agent_id=agent_id, tool="shell", outcome="ok"):
                name = self._names.get(agent_id, "")
                self._lines[name] = self._lines.get(name, 0) + 1
            case TaskStatusChanged(status="completed" | "cancelled", task_id=task_id):
                self._finished.add(task_id)
            case _:
                pass

    async def _act(self) -> None:
        lines = self._lines
        if lines.get("ann", 0) >= 1:
            await self._once("ann", "pause")
        if ("ann", "pause") in self._applied:
            await self._once("ann", "resume")
        if 1 <= lines.get("ben", 0) <= STEPS - 2:  # at least two of his model calls remain
            await self._once("ben", "steer")
        if lines.get("cal", 0) >= 1:
            await self._once("cal", "cancel")
        if IDLE in self._names.values():
            await self._once(IDLE, "pause")
        if (IDLE, "pause") in self._applied:
            await self._once(IDLE, "resume")

    async def _once(self, name: str, action: str) -> None:
        if (name, action) in self._requested:
            return
        self._requested.add((name, action))
        session = self.session
        try:
            match action:
                case "pause":
                    request = await session.pause(name, force=name == IDLE)
                case "resume":
                    request = await session.resume(name)
                case "steer":
                    request = await session.steer(name, GUIDANCE)
                case _:
                    request = await session.cancel(name)
        except UserError as exc:  # e.g. resuming an agent another control un-paused
            say(self.run, f"SKIP {action} {name} {json.dumps(str(exc))}")
            return
        self.acked += 1
        say(self.run, f"ACK {action} {name} {request}")


async def scenario(run: str, store: str, project: str, session_id: str, mode: str) -> None:
    """One run: start or resume the session, ensure the work, drive the controls, wait."""
    policy = PermissionPolicy(auto_approve=frozenset({"*"}))
    async with await Loomkin.open(store) as lk:
        try:
            if session_id == "-":
                session = await lk.open_session(
                    project, model_factory=factory, settings=SETTINGS, policy=policy
                )
                say(run, f"SESSION {session.session_id}")
            else:
                session = await lk.resume_session(
                    session_id,
                    model_factory=factory,
                    settings=SETTINGS,
                    policy=policy,
                    take_over=mode == "takeover",
                )
        except LeaseHeld as exc:
            say(run, f"HELD {json.dumps(str(exc))}")
            return
        history = await session.history()
        replayed = history[-1].position if history else 0
        lease = session.lease()
        say(run, f"LEASE {lease.epoch if lease else 0} {replayed}")
        outcome = "DONE"
        try:
            await _work(run, lk, session, replayed)
        except* StaleEpoch as group:  # taken over: this run's agents stopped
            outcome = f"LOST {json.dumps(str(group.exceptions[0]))}"
        say(run, outcome)


async def _work(run: str, lk: Loomkin, session: Session, replayed: int) -> None:
    driver = Driver(run, session)
    async with asyncio.TaskGroup() as group:
        printer = group.create_task(_print_events(run, session))
        follower = group.create_task(driver.follow(replayed))
        try:
            await ensure_work(session)
            while True:
                acked = driver.acked
                await session.wait_idle()
                await driver.reached(lk.last_position)  # it may have a control to request
                if driver.acked == acked:
                    break
        finally:
            printer.cancel()
            follower.cancel()


async def _print_events(run: str, session: Session) -> None:
    """One ``EV`` line per committed event (the parent kills at a random one)."""
    async with session.events(after=None) as events:
        async for recorded in events:
            say(run, f"EV {recorded.position} {recorded.event_id} {recorded.event.kind}")


def say(run: str, text: str) -> None:
    """Print one line for the parent in a single ``write``.

    The runs share the pipe: a line written in pieces could interleave with another run's.
    """
    os.write(1, f"{run} {text}\n".encode())


def child(run: str, store: str, project: str, session_id: str, mode: str) -> None:
    """The forked process: run the scenario, print ``FAIL`` on error, exit without cleanup."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the shell tool waits for its children
    # Take-overs and refusals are the point here, not news: the parent counts them.
    logging.disable(logging.ERROR)
    say(run, f"PID {os.getpid()}")
    code = 0
    try:
        asyncio.run(scenario(run, store, project, session_id, mode))
    except BaseException:
        say(run, f"FAIL {json.dumps(traceback.format_exc())}")
        code = 1
    finally:
        os._exit(code)


def serve() -> None:
    """The fork server's main loop: one forked run per line on stdin."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished and killed runs are reaped for us
    while line := sys.stdin.readline():
        run, store, project, session_id, mode = line.split()
        Path(project).mkdir(parents=True, exist_ok=True)
        if os.fork() == 0:
            child(run, store, project, session_id, mode)
