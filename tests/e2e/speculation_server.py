"""Child process of ``test_web_speculation.py``: a served session with three speculations.

``python speculation_server.py --project DIR --port N --token T`` makes DIR a git repository,
opens a session on it with scripted workers (the loop, tools, board, git worktrees and the
speculation service are real), starts three speculations, serves the web app and prints its
URL (with the token), then runs until interrupted:

* **held**: bob writes the client ahead of ann's interface, assuming its signature (exact)
  and that ``parse`` raises ``ValueError`` (prose, the judge says HOLDS): merged.
* **failed**: dan writes the loader ahead of cat's schema, assuming ``format = json`` (the
  schema says yaml) and that the schema file is JSON (the judge says FAILS): discarded, the
  loader redone.
* **running**: fay writes the examples ahead of eve's docs, which never finish: the page
  cancels it.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from _pipeline_models import Playbook, Turn, answered

from loomkin.agents import SessionSettings
from loomkin.agents.judge import JUDGE_NAME
from loomkin.api.server import serve
from loomkin.core.chat import UserMessage
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

SETTINGS = SessionSettings(bootstrap_orienter=False)
WRITES = PermissionPolicy(auto_approve=frozenset({"file_write", "file_edit"}))
SIGNATURE = "def parse(text: str) -> Ast"


def git_repo(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("demo\n")
    (root / ".gitignore").write_text(".loomkin/\n")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "start")):
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        subprocess.run(git, cwd=root, check=True, capture_output=True)


async def until_tentative(session: Session, title: str) -> None:
    """Wait (real time, this is a served demo) until the task ``title`` finished tentatively."""
    while not any(  # noqa: ASYNC110
        t.title == title and t.status == "completed_tentative" for t in session.tasks()
    ):
        await asyncio.sleep(0.05)


def blocker(ref: list[Session], dependent: str, path: str, content: str, decision: str) -> object:
    """Wait for the dependent's speculative work, then write ``path`` and complete."""

    async def play(turn: Turn) -> Reply:
        k = answered(turn)
        if k == 0:
            await until_tentative(ref[0], dependent)
            return Reply(tool_calls=[Call("file_write", {"path": path, "content": content})])
        if k == 1:
            done = {"result": f"{path} written", "files_changed": [path], "decisions": [decision]}
            return Reply(tool_calls=[Call("task_complete", done)])
        return Reply(text="done")

    return play


def writer(path: str, content: str) -> object:
    """Write ``path`` and complete (a redo writes it again)."""

    async def play(turn: Turn) -> Reply:
        k = answered(turn)
        if k == 0:
            body = content + ("# redone with the real output\n" if "[Redo]" in turn.brief else "")
            return Reply(tool_calls=[Call("file_write", {"path": path, "content": body})])
        if k == 1:
            done = {"result": f"{path} written", "files_changed": [path]}
            return Reply(tool_calls=[Call("task_complete", done)])
        return Reply(text="done")

    return play


async def hang(_turn: Turn) -> Reply:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def judge(request: ModelRequest) -> Reply:
    """The scripted judge: reads the assumption and the real output it was given."""
    asked = "\n".join(m.text for m in request.messages if isinstance(m, UserMessage))
    if "ValueError" in asked:
        return Reply(text="HOLDS\nThe interface's decisions say parse raises ValueError.")
    return Reply(text="FAILS\nThe schema's decisions say its format is yaml, not JSON.")


class Models:
    """The workers' playbook, and the judge for the judge's name."""

    def __init__(self, book: Playbook) -> None:
        self.book = book
        self.judge = FunctionModel(judge, name="scripted:judge")

    def __call__(self, role: Role, name: str) -> Model:
        return self.judge if name == JUDGE_NAME else self.book.factory(role, name)


async def main(project: Path, port: int, token: str) -> None:
    git_repo(project)
    ref: list[Session] = []
    book = Playbook(
        parts={
            "write the interface": blocker(
                ref, "write the client", "api.py", f"{SIGNATURE}: ...\n", f"signature: {SIGNATURE}"
            ),
            "write the client": writer("client.py", "from api import parse\n"),
            "write the schema": blocker(
                ref, "write the loader", "schema.yaml", "id: int\n", "format: yaml"
            ),
            "write the loader": writer("loader.py", "import json\n"),
            "write the docs": hang,
            "write the examples": writer("examples.md", "# examples\n"),
        }
    )
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            project, model_factory=Models(book), settings=SETTINGS, policy=WRITES
        )
        ref.append(session)
        plan = [
            ("ann", "write the interface", "bob", "write the client"),
            ("cat", "write the schema", "dan", "write the loader"),
            ("eve", "write the docs", "fay", "write the examples"),
        ]
        pairs = []
        for owner, first, speculator, second in plan:
            await session.spawn_agent(owner, "coder")
            t1 = await session.create_task(first, assign_to=owner)
            t2 = await session.create_task(second, depends_on=(t1,))
            await session.spawn_agent(speculator, "coder")
            pairs.append((t2, speculator))
        assumptions = [
            [
                {"key": "signature", "value": SIGNATURE},
                {"text": "parse raises ValueError on bad input"},
            ],
            [{"key": "format", "value": "json"}, {"text": "the schema file is JSON"}],
            [{"key": "docs_format", "value": "markdown"}],
        ]
        # All three start before any check: the hit rate is still the prior's.
        for (task_id, agent), stated in zip(pairs, assumptions, strict=True):
            await session.speculate(task_id, agent, stated)
        await serve(lk, port=port, token=token, ready=lambda url: print(url, flush=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.project, args.port, args.token))
