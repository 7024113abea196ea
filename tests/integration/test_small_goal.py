"""Issue #3: a small goal end to end on a temporary git project, through the public API only.

The model is scripted (it reads the request it is given and answers the way a model would);
every agent, tool call, task, permission prompt and file write is the real runtime at work.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.core.events import (
    AssistantReplied,
    LoopFinished,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.records import PermissionDecision
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import PendingPermission

GOAL = "Add a mathutil.add(a, b) function with a test."
MODULE = 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n    return a + b\n'
TEST = "from mathutil import add\n\nassert add(2, 3) == 5\nprint('ok: add works')\n"


def git(root: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    done = subprocess.run(
        ["git", *identity, "-C", str(root), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def results(request: ModelRequest) -> list[ToolResultMessage]:
    return [m for m in request.messages if isinstance(m, ToolResultMessage)]


def concierge(request: ModelRequest) -> Reply:
    done = [r.name for r in results(request)]
    if "team_spawn" not in done:
        return Reply(
            text="I'll get a coder on it.",
            tool_calls=[
                Call(
                    "team_spawn",
                    {"team_name": "math", "roles": [{"name": "cody", "role": "coder"}]},
                )
            ],
        )
    if "team_assign" not in done:
        return Reply(
            tool_calls=[
                Call(
                    "team_assign",
                    {"agent": "math/cody", "title": "Add mathutil.add", "description": GOAL},
                )
            ]
        )
    text = "\n".join(getattr(m, "text", "") for m in request.messages)
    if "[Task finished]" in text:
        return Reply(text="Done: mathutil.add exists and its test passes.")
    return Reply(text="Cody is on it.")


def coder(request: ModelRequest) -> Reply:
    steps = [
        Reply(tool_calls=[Call("file_write", {"path": "mathutil.py", "content": MODULE})]),
        Reply(tool_calls=[Call("file_write", {"path": "test_mathutil.py", "content": TEST})]),
        Reply(tool_calls=[Call("shell", {"command": "python test_mathutil.py"})]),
        Reply(
            tool_calls=[
                Call(
                    "task_complete",
                    {
                        "result": "mathutil.add(a, b) added; its test passes.",
                        "files_changed": ["mathutil.py", "test_mathutil.py"],
                    },
                )
            ]
        ),
        Reply(text="Finished."),
    ]
    brief = max(
        i
        for i, m in enumerate(request.messages)
        if isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
    )
    made = sum(1 for m in request.messages[brief:] if isinstance(m, AssistantMessage))
    return steps[min(made, len(steps) - 1)]


def factory(role: Role, name: str) -> Model:
    return FunctionModel(concierge if role.name == "concierge" else coder, name=f"scripted:{name}")


async def test_a_small_goal_end_to_end(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# math\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "initial")
    asked: list[str] = []

    async def approve(prompt: PendingPermission) -> PermissionDecision:
        asked.append(prompt.agent)
        return "allow_once"

    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(
            project, model_factory=factory, settings=SessionSettings(bootstrap_orienter=False)
        )
        session.set_permission_responder(approve)
        await session.send(GOAL)
        await session.wait_idle()
        events = [r.event for r in await session.history()]
        summary = await session.summary()

    # The files are on disk, and they work.
    assert (project / "mathutil.py").read_text() == MODULE
    assert (project / "test_mathutil.py").read_text() == TEST
    status = git(project, "status", "--porcelain")
    assert sorted(status.split()) == sorted(["??", "??", "mathutil.py", "test_mathutil.py"])
    # The log tells the story: the writes and the shell run asked first, and all succeeded.
    assert asked == ["cody", "cody", "cody"]
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    completed = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert [e.tool for e in started] == [
        "team_spawn",
        "team_assign",
        "file_write",
        "file_write",
        "shell",
        "task_complete",
    ]
    assert [c.is_error for c in completed] == [False] * 6
    assert len({e.call_id for e in started}) == len(started)
    shell = next(c for c in completed if c.tool == "shell")
    assert "ok: add works" in shell.result
    assert "[exit code 0]" in shell.result
    statuses = [e.status for e in events if isinstance(e, TaskStatusChanged)]
    assert statuses[-1] == "completed"
    assert summary.tasks == {"completed": 1}
    assert set(summary.files_changed) == {"mathutil.py", "test_mathutil.py"}
    replies = [e.text for e in events if isinstance(e, AssistantReplied)]
    assert replies[-1] == "Done: mathutil.add exists and its test passes."
    outcomes = {e.outcome for e in events if isinstance(e, LoopFinished)}
    assert outcomes == {"final"}
    assert not [e for e in events if e.kind in ("agent_crashed", "model_call_failed")]
