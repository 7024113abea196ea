"""The bundled demo: a real session on a sample project, with scripted model answers.

Only the model's answers are scripted. Every agent, tool call, file write, task, message,
permission prompt and decision is the real runtime doing real work on a copy of the sample
project. The scripts below read the request they are given (the transcript the runtime built)
and answer the way a capable model would, so the same run exercises the whole system:

1. The user's goal reaches the Concierge; the Orienter scans the project on its own and sends
   the Concierge a brief.
2. The Concierge spawns a team (two coders and a tester) and creates three tasks: the tester's
   task waits for the ``interface`` milestone of the first coder's task, not its completion.
3. The scheduler assigns the tasks; the coders work in parallel; their file writes need
   permission (answered automatically, or in the browser with ``serve --demo``).
4. The tester starts as soon as the milestone is reached, writes tests and runs them.
5. The Concierge summarises when every task is done.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, ToolResultMessage, UserMessage
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.core.chat import ChatMessage
    from loomkin.core.events import JSON
    from loomkin.core.records import PermissionDecision
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Loomkin, PendingPermission, Session

__all__ = ["DEMO_GOAL", "copy_sample_project", "demo_model", "start_demo"]

DEMO_GOAL = (
    "Give greet() an optional shout flag, add a farewell() function, and cover both with tests."
)

_PYTHON = shlex.quote(sys.executable)
"""The interpreter running the demo runs the sample project's tests too."""

_SHOUT_OLD = '''def greet(name: str) -> str:
    """Return a friendly greeting for ``name``."""
    return f"Hello, {name}!"
'''
_SHOUT_NEW = '''def greet(name: str, *, shout: bool = False) -> str:
    """Return a friendly greeting for ``name`` (in capitals when ``shout``)."""
    text = f"Hello, {name}!"
    return text.upper() if shout else text
'''
_FAREWELL = '''"""Saying goodbye."""


def farewell(name: str) -> str:
    """Return a warm goodbye for ``name``."""
    return f"Goodbye, {name}. See you soon!"
'''
_INIT = '''"""greetings: say hello (and goodbye)."""

from greetings.core import greet
from greetings.farewell import farewell

__all__ = ["farewell", "greet"]
'''
_TESTS = """import unittest

from greetings import farewell, greet


class NewBehaviourTest(unittest.TestCase):
    def test_shout(self) -> None:
        self.assertEqual(greet("Ada", shout=True), "HELLO, ADA!")

    def test_quiet_by_default(self) -> None:
        self.assertEqual(greet("Ada"), "Hello, Ada!")

    def test_farewell(self) -> None:
        self.assertEqual(farewell("Ada"), "Goodbye, Ada. See you soon!")


if __name__ == "__main__":
    unittest.main()
"""


def copy_sample_project(target: Path | None = None) -> Path:
    """Copy the bundled sample project to ``target`` (a new temp dir by default); git-init it."""
    root = target or Path(tempfile.mkdtemp(prefix="loomkin-demo-"))
    source = resources.files("loomkin.demo") / "sample_project"
    with resources.as_file(source) as src:
        shutil.copytree(src, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.name=Loomkin Demo", "-c", "user.email=demo@loomkin.invalid"]
    if shutil.which("git") is not None and not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run([*git, "-C", str(root), "add", "-A"], check=True)
        subprocess.run([*git, "-C", str(root), "commit", "-qm", "Initial greetings"], check=True)
    return root


# -- reading the request ------------------------------------------------------------------------


def _text(message: ChatMessage) -> str:
    return message.content if isinstance(message, ToolResultMessage) else message.text


def _agent_name(request: ModelRequest) -> str:
    match = re.match(r"You are (\S+), the", _text(request.messages[0]))
    return match.group(1) if match else ""


def _last_input(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if isinstance(message, UserMessage):
            return message.text
    return ""


def _all_text(request: ModelRequest) -> str:
    return "\n".join(_text(m) for m in request.messages)


def _task_ids(text: str) -> list[str]:
    return re.findall(r"Created task (task_[0-9a-f-]+)", text)


# -- the scripts ----------------------------------------------------------------------------------


def _tool_results(request: ModelRequest) -> list[ToolResultMessage]:
    return [m for m in request.messages if isinstance(m, ToolResultMessage)]


def _orienter(request: ModelRequest) -> Reply:
    done = _tool_results(request)
    if not done:
        return Reply(
            text="Scanning the project.",
            tool_calls=[
                Call("directory_list", {"path": "."}),
                Call("file_read", {"path": "README.md"}),
                Call("git", {"operation": "log", "args": ["--oneline", "-5"]}),
            ],
        )
    if len(done) == 3:
        brief = (
            "## Session brief\n"
            "Active goals: none recorded yet.\n"
            "Recent activity: one commit (Initial greetings).\n"
            "Coverage gaps: only greet() is tested.\n"
            "Prior context: AGENTS.md asks for a test per public function.\n"
            "Hypotheses: new functions belong in greetings/ and must be exported."
        )
        return Reply(tool_calls=[Call("peer_message", {"to": "concierge", "content": brief})])
    return Reply(text="Brief sent to the concierge.")


def _said(request: ModelRequest, text: str) -> bool:
    return any(isinstance(m, AssistantMessage) and text in m.text for m in request.messages)


def _concierge(request: ModelRequest) -> Reply:
    """Plan from the whole transcript, so messages arriving mid-plan do not derail it."""
    results = _tool_results(request)
    names = [r.name for r in results]
    ids = _task_ids("\n".join(r.content for r in results if r.name == "task_create"))
    if "team_spawn" not in names:
        return Reply(
            text="I'll put a small team on this.",
            tool_calls=[
                Call("team_spawn", {"team_name": "greeters", "roles": _TEAM, "purpose": DEMO_GOAL})
            ],
        )
    if not ids:
        return Reply(tool_calls=[_create(_SHOUT_TASK), _create(_FAREWELL_TASK)])
    if len(ids) == 2:
        test_task: dict[str, JSON] = {**_TEST_TASK, "depends_on": [ids[0]]}
        return Reply(tool_calls=[_create(test_task)])
    if "add_dependency" not in names:
        return Reply(
            tool_calls=[
                Call("add_dependency", {"task_id": ids[2], "depends_on": ids[1], "kind": "blocks"}),
                Call(
                    "decision_log",
                    {
                        "node_type": "decision",
                        "title": "Tests start at greet()'s interface milestone",
                        "description": "The tester need not wait for the whole shout task.",
                    },
                ),
            ]
        )
    if not _said(request, _ON_IT):
        return Reply(text=_ON_IT)
    finished = _all_text(request).count("[Task finished]")
    if finished >= 3:
        if _said(request, "All done."):
            return Reply(text="Everything is finished; nothing else to do.")
        return Reply(
            text=(
                "All done. greet() now takes shout=True, farewell() is in greetings/farewell.py "
                "and exported, and the new tests pass."
            )
        )
    if "Message from orienter" in _last_input(request):
        return Reply(text="Thanks, orienter: the brief matches the plan.")
    return Reply(text=f"Noted: {finished} of 3 tasks finished.")


_ON_IT = (
    "Team 'greeters' is on it: alice adds the shout flag, bob adds farewell(), and tess starts "
    "testing as soon as greet()'s new interface exists."
)
_TEAM: list[JSON] = [
    {"name": "alice", "role": "coder"},
    {"name": "bob", "role": "coder"},
    {"name": "tess", "role": "tester"},
]
_SHOUT_TASK: dict[str, JSON] = {
    "title": "Add a shout flag to greet()",
    "description": "greetings/core.py: greet(name, *, shout=False).",
    "priority": 2,
    "role": "coder",
    "team": "greeters",
}
_FAREWELL_TASK: dict[str, JSON] = {
    "title": "Add farewell()",
    "description": "New module greetings/farewell.py, exported from the package.",
    "role": "coder",
    "team": "greeters",
}
_TEST_TASK: dict[str, JSON] = {
    "title": "Test shout and farewell",
    "description": "Write tests for the new behaviour and run the suite.",
    "role": "tester",
    "team": "greeters",
    "dep_kind": "requires_output",
    "milestone": "interface",
}


def _create(args: dict[str, JSON]) -> Call:
    return Call("task_create", args)


def _worker(request: ModelRequest) -> Reply:
    """Follow the steps of the task named in the newest brief, one step per model call."""
    brief_at = None
    for i, message in enumerate(request.messages):
        if isinstance(message, UserMessage) and message.text.startswith("[Task assigned]"):
            brief_at = i
    if brief_at is None:
        return Reply(text="Nothing to do.")
    brief = request.messages[brief_at]
    assert isinstance(brief, UserMessage)
    title = brief.text.split("\n", 1)[0]
    if "Test shout" in title:
        steps = _tester_steps()
    elif "shout flag" in title:
        steps = _shout_steps()
    elif "farewell" in title:
        steps = _farewell_steps()
    else:
        return Reply(text="Nothing to do.")
    step = sum(1 for m in request.messages[brief_at:] if isinstance(m, AssistantMessage))
    return steps[min(step, len(steps) - 1)]


def _shout_steps() -> list[Reply]:
    return [
        Reply(
            text="Reading greet().", tool_calls=[Call("file_read", {"path": "greetings/core.py"})]
        ),
        Reply(
            tool_calls=[
                Call(
                    "file_edit",
                    {
                        "path": "greetings/core.py",
                        "old_string": _SHOUT_OLD,
                        "new_string": _SHOUT_NEW,
                    },
                )
            ]
        ),
        Reply(
            text="The new signature exists; the tester can start.",
            tool_calls=[
                Call("emit_milestone", {"name": "interface", "note": "greet(name, *, shout=False)"})
            ],
        ),
        Reply(
            tool_calls=[
                Call(
                    "task_complete",
                    {
                        "result": "greet(name, *, shout=False) returns the greeting in capitals "
                        "when shout is true.",
                        "actions_taken": ["added a keyword-only shout flag to greet()"],
                        "files_changed": ["greetings/core.py"],
                        "decisions": ["shout is keyword-only so existing calls are unaffected"],
                    },
                )
            ]
        ),
        Reply(text="Done: greet() can shout."),
    ]


def _farewell_steps() -> list[Reply]:
    return [
        Reply(
            text="Writing farewell().",
            tool_calls=[
                Call("file_write", {"path": "greetings/farewell.py", "content": _FAREWELL})
            ],
        ),
        Reply(tool_calls=[Call("file_write", {"path": "greetings/__init__.py", "content": _INIT})]),
        Reply(
            tool_calls=[
                Call(
                    "task_complete",
                    {
                        "result": "farewell(name) is in greetings/farewell.py and exported.",
                        "actions_taken": ["wrote greetings/farewell.py", "exported farewell"],
                        "files_changed": ["greetings/farewell.py", "greetings/__init__.py"],
                    },
                )
            ]
        ),
        Reply(text="Done: farewell() exists."),
    ]


def _tester_steps() -> list[Reply]:
    return [
        Reply(
            text="Writing tests for the new behaviour.",
            tool_calls=[Call("file_write", {"path": "tests/test_new.py", "content": _TESTS})],
        ),
        Reply(tool_calls=[Call("shell", {"command": "python -m unittest discover -s tests"})]),
        Reply(
            tool_calls=[
                Call(
                    "task_complete",
                    {
                        "result": "4 tests, all passing (greet, shout, quiet default, farewell).",
                        "actions_taken": ["wrote tests/test_new.py", "ran the suite"],
                        "files_changed": ["tests/test_new.py"],
                    },
                )
            ]
        ),
        Reply(text="Done: the tests pass."),
    ]


def demo_model(role: Role, name: str, *, pace_s: float = 0.0) -> Model:
    """The scripted model of one demo agent (``pace_s``: real seconds per model call)."""
    scripts = {"concierge": _concierge, "orienter": _orienter}
    fn = scripts.get(role.name, _worker)
    return FunctionModel(fn, name=f"scripted:{name}", latency_s=pace_s, chunk_chars=24)


async def start_demo(
    loomkin: Loomkin,
    *,
    project: Path | None = None,
    auto_approve: bool = True,
    pace_s: float = 0.0,
) -> Session:
    """Open the demo session on a copy of the sample project and send the demo goal."""
    root = copy_sample_project(project)
    session = await loomkin.open_session(
        root,
        model_factory=lambda role, name: demo_model(role, name, pace_s=pace_s),
        title="Loomkin demo (simulated model)",
    )
    if auto_approve:

        async def approve(_prompt: PendingPermission) -> PermissionDecision:
            return "allow_once"

        session.set_permission_responder(approve)
    await session.send(DEMO_GOAL)
    return session
