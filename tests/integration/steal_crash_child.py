"""Child process of ``test_steal_crash.py``: a session where idle agents steal queued work.

``python steal_crash_child.py STORE_URL PROJECT -`` starts a session: three coders, and six
tasks all given to ``ann``, so ``bob`` and ``cy`` steal them; it prints ``SESSION <id>`` and
then ``READY`` once the tasks are on the board. ``python steal_crash_child.py STORE_URL
PROJECT <id>`` resumes that session (taking over from a killed holder). Either way it prints
``EV <kind>`` for every committed event and ``DONE`` once every task is completed. The model
appends ``<task> <agent>`` to ``worked.txt`` (fsynced) each time it works on a task: the side
effect a task worked twice would leave twice, by two agents. The parent SIGKILLs it anywhere.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import UserMessage
from loomkin.core.events import TaskStatusChanged
from loomkin.service import Loomkin
from loomkin.testing.internals import event_log
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.agents.roles import Role
    from loomkin.core.events import RecordedEvent
    from loomkin.llm.model import Model, ModelRequest

TASKS = 6
SETTINGS = SessionSettings(bootstrap_orienter=False)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _factory(project: Path) -> Callable[[Role, str], Model]:
    worked = project / "worked.txt"

    def make(_role: Role, name: str) -> Model:
        async def answer(request: ModelRequest) -> Reply:
            last = request.messages[-1] if request.messages else None
            if isinstance(last, UserMessage) and last.text.startswith("[Task assigned]"):
                title = last.text.split("] ", 1)[1].split(" (task id", 1)[0]
                with worked.open("a", encoding="utf-8") as out:
                    out.write(f"{title} {name}\n")
                    out.flush()
                    os.fsync(out.fileno())
                await asyncio.sleep(0.02)  # the work
                return Reply(tool_calls=[Call("task_complete", {"result": f"{title} by {name}"})])
            return Reply(text="ok")

        return FunctionModel(answer, name=f"fn:{name}")

    return make


def _completed(history: list[RecordedEvent]) -> int:
    return len(
        {
            r.event.task_id
            for r in history
            if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
        }
    )


async def main(url: str, project: Path, session_id: str) -> None:
    async with await Loomkin.open(url) as lk:
        event_log(lk).add_listener(lambda r: _say(f"EV {r.event.kind}"))
        if session_id == "-":
            session = await lk.open_session(
                project, model_factory=_factory(project), settings=SETTINGS
            )
            _say(f"SESSION {session.session_id}")
            for name in ("ann", "bob", "cy"):
                await session.spawn_agent(name, "coder")
            for k in range(TASKS):
                await session.create_task(f"job{k}", assign_to="ann")
            _say("READY")
        else:
            session = await lk.resume_session(
                session_id, model_factory=_factory(project), settings=SETTINGS, take_over=True
            )
        while _completed(await session.history()) < TASKS:
            await session.wait_idle()
            await asyncio.sleep(0.01)
        _say("DONE")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
