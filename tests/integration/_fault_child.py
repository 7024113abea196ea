"""Child of the fault-injection test: a fork server that runs one scripted session per request.

Importing Loomkin costs seconds, so this process imports it once and then forks a fresh
process for every run the parent asks for (one line on stdin: ``RUN DB PROJECT SESSION|-``).
The forked process is the one the parent kills with SIGKILL: it has its own event loop, its
own SQLite connection and its own shell children. Every line it prints starts with its run
number, so the parent can ignore lines a killed run left in the pipe.

A run opens the store, starts the session (``-``) or resumes it, makes sure two coders each
have their task (idempotently: a run killed during setup is completed by the next one), waits
until the session is idle, and prints ``DONE`` with what the parent checks.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents.session import SessionSettings
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import RecordedEvent, ToolCallCompleted, ToolCallStarted
from loomkin.ids import TaskId
from loomkin.service import Loomkin, Session
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.llm.model import Model, ModelRequest

WORKERS = ("ann", "ben")
STEPS = 3
SETTINGS = SessionSettings(bootstrap_orienter=False)


def coder(request: ModelRequest) -> Reply:
    """Append STEPS lines (one shell call each) for the task in the brief, then complete it."""
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
    title = request.messages[brief_at].text.split()[2]  # type: ignore[union-attr]
    done = sum(1 for m in request.messages[brief_at:] if isinstance(m, ToolResultMessage))
    if done < STEPS:
        line = f"{title}-{done + 1}"
        return Reply(tool_calls=[Call("shell", {"command": f"echo {line} >> side.txt"})])
    if done == STEPS:
        return Reply(
            tool_calls=[Call("task_complete", {"result": f"{title}: {STEPS} lines appended"})]
        )
    said = sum(1 for m in request.messages[brief_at:] if isinstance(m, AssistantMessage))
    return Reply(text=f"{title} finished ({said}).")


def factory(_role: object, name: str) -> Model:
    return FunctionModel(coder, name=f"scripted:{name}")


async def ensure_work(lk: Loomkin, session: Session) -> None:
    runtime = session.runtime
    for name in WORKERS:
        agent = runtime.find_agent(runtime.root_team_id, name)
        if agent is None:
            agent = await runtime.spawn_agent(runtime.root_team_id, name, "coder")
        title = f"task-{name}"
        view = next(
            (
                t
                for t in lk.board.tasks()
                if t.session_id == session.session_id and t.title == title
            ),
            None,
        )
        if view is None:
            task_id = await lk.tasks.create(
                session_id=runtime.session_id, team_id=agent.team_id, title=title
            )
        else:
            task_id = TaskId(view.task_id)
        if lk.tasks.task(task_id).owner is None:
            await lk.tasks.assign(task_id, agent, by="test")


async def scenario(run: str, db: str, project: str, session_id: str) -> None:
    policy = PermissionPolicy(auto_approve=frozenset({"*"}))
    async with await Loomkin.open(f"sqlite:///{db}") as lk:
        lk.log.add_listener(lambda r: print(f"{run} EV {r.event.kind}", flush=True))
        if session_id == "-":
            session = await lk.open_session(
                project,
                model_factory=factory,
                settings=SETTINGS,
                policy=policy,  # type: ignore[arg-type]
            )
            print(f"{run} SESSION {session.session_id}", flush=True)
        else:
            session = await lk.resume_session(
                session_id,
                model_factory=factory,
                settings=SETTINGS,
                policy=policy,  # type: ignore[arg-type]
            )
        await ensure_work(lk, session)
        await session.wait_idle()
        print(f"{run} DONE {json.dumps(await report(lk, session))}", flush=True)


async def report(lk: Loomkin, session: Session) -> dict[str, object]:
    events: list[RecordedEvent] = await lk.log.read(session_id=session.session_id)
    started = collections.Counter(
        r.event.call_id for r in events if isinstance(r.event, ToolCallStarted)
    )
    outcomes = collections.Counter(
        r.event.outcome for r in events if isinstance(r.event, ToolCallCompleted)
    )
    tasks = {t.title: t.status for t in lk.board.tasks() if t.session_id == session.session_id}
    return {
        "tasks": tasks,
        "started": sum(started.values()),
        "started_twice": [c for c, n in started.items() if n > 1],
        "outcomes": dict(outcomes),
    }


def child(run: str, db: str, project: str, session_id: str) -> None:
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


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished and killed runs are reaped for us
    while line := sys.stdin.readline():
        run, db, project, session_id = line.split()
        Path(project).mkdir(parents=True, exist_ok=True)
        if os.fork() == 0:
            child(run, db, project, session_id)


if __name__ == "__main__":
    main()
