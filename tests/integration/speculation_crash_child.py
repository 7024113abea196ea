"""Child process of ``test_speculation_crash.py``: killed with SIGKILL mid-speculation.

``python speculation_crash_child.py <store url> <project>`` opens a session on the project,
lets ``bob`` speculate on the client task (he writes ``client.py`` in his worktree and
completes it tentatively) while ``ann``'s interface task hangs in a model call, prints
``ready <session> <interface task> <client task>`` and waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _pipeline_models import Playbook, Turn, answered
from _speculation import CLIENT, SIGNATURE, open_pipeline, tentative_done

from loomkin.service import Loomkin
from loomkin.testing.models import Call, Reply


async def hang(_turn: Turn) -> Reply:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def client(turn: Turn) -> Reply:
    k = answered(turn)
    if k == 0:
        return Reply(tool_calls=[Call("file_write", {"path": "client.py", "content": CLIENT})])
    if k == 1:
        done = {"result": "client written", "files_changed": ["client.py"]}
        return Reply(tool_calls=[Call("task_complete", done)])
    return Reply(text="client done")


async def main(url: str, project: str) -> None:
    book = Playbook(parts={"write the interface": hang, "write the client": client})
    async with await Loomkin.open(url) as lk:
        session, t1, t2 = await open_pipeline(lk, Path(project), book.factory)
        await session.speculate(t2, "bob", [{"key": "signature", "value": SIGNATURE}])
        await tentative_done(session)
        print(f"ready {session.session_id} {t1} {t2}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
