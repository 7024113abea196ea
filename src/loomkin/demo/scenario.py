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


# -- the scripts ----------------------------------------------------------------------------------
#
# After a crash, a tool call that was running is reported as "interrupted: ... it may or may not
# have taken effect". The scripts answer it as a capable model would: a call that is harmless to
# repeat is simply made again; before repeating one that is not (creating a team or a task,
# logging a decision) they check what exists first. (Reads and whole-file writes the runtime
# runs again itself: they are idempotent.)


def _tool_results(request: ModelRequest) -> list[ToolResultMessage]:
    return [m for m in request.messages if isinstance(m, ToolResultMessage)]


def _interrupted(message: ToolResultMessage) -> bool:
    return message.content.startswith("interrupted")


def _orienter(request: ModelRequest) -> Reply:
    done = [r for r in _tool_results(request) if not _interrupted(r)]
    names = [r.name for r in done]
    if not done:
        return Reply(
            text="Scanning the project.",
            tool_calls=[
                Call("directory_list", {"path": "."}),
                Call("file_read", {"path": "README.md"}),
                Call("git", {"operation": "log", "args": ["--oneline", "-5"]}),
            ],
        )
    if "peer_message" not in names:  # (again, if sending it was interrupted)
        brief = (
            "## Session brief\n"
            "Active goals: none recorded yet.\n"
            "Recent activity: one commit (Initial greetings).\n"
            "Coverage gaps: only greet() is tested.\n"
            "Prior context: AGENTS.md asks for a test per public function.\n"
            "Hypotheses: new functions belong in greetings/ and must be exported."
        )
        return Reply(tool_calls=[Call("peer_message", {"to": "concierge", "content": brief})])
    if "signal_ready" not in names:  # the Concierge waits for this before it plans
        return Reply(
            tool_calls=[
                Call(
                    "signal_ready",
                    {"name": "briefed", "detail": "the session brief is in your messages"},
                )
            ]
        )
    return Reply(text="Brief sent to the concierge.")


def _said(request: ModelRequest, text: str) -> bool:
    return any(isinstance(m, AssistantMessage) and text in m.text for m in request.messages)


_CHECKS: dict[str, Call] = {
    "team_spawn": Call("list_teams", {}),
    "task_create": Call("task_list", {"team": "greeters"}),
    "decision_log": Call("decision_query", {"search": "interface milestone"}),
}
"""What to look at before repeating an interrupted call that must not be done twice."""


def _check_first(results: list[ToolResultMessage]) -> Call | None:
    """The look to take before going on, if a call whose effect is unknown was not checked."""
    for i, result in enumerate(results):
        check = _CHECKS.get(result.name)
        if check is None or not _interrupted(result):
            continue
        if not any(r.name == check.name and not _interrupted(r) for r in results[i + 1 :]):
            return check
    return None


def _known_tasks(results: list[ToolResultMessage]) -> dict[str, str]:
    """Title → id of the greeters' tasks, from creations and the newest task list."""
    tasks: dict[str, str] = {}
    for result in results:
        if result.name == "task_create":
            for task_id, title in re.findall(r"Created task (task_\S+) '([^']*)'", result.content):
                tasks[title] = task_id
        elif result.name == "task_list":
            for task_id, title in re.findall(r"\] (task_\S+) '([^']*)'", result.content):
                tasks[title] = task_id
    return tasks


def _concierge(request: ModelRequest) -> Reply:
    """Plan from the whole transcript, so messages arriving mid-plan do not derail it."""
    results = _tool_results(request)
    check = _check_first(results)
    if check is not None:
        return Reply(text="Checking what already exists before going on.", tool_calls=[check])
    done = [r for r in results if not _interrupted(r)]
    names = [r.name for r in done]
    team_seen = any(r.name == "list_teams" and "- greeters " in r.content for r in done)
    if "team_spawn" not in names and not team_seen:
        return Reply(
            text="I'll put a small team on this.",
            tool_calls=[
                Call("team_spawn", {"team_name": "greeters", "roles": _TEAM, "purpose": DEMO_GOAL})
            ],
        )
    tasks = _known_tasks(done)
    first = [t for t in (_SHOUT_TASK, _FAREWELL_TASK) if t["title"] not in tasks]
    if first:
        return Reply(tool_calls=[_create(t) for t in first])
    shout, farewell = tasks[str(_SHOUT_TASK["title"])], tasks[str(_FAREWELL_TASK["title"])]
    if _TEST_TASK["title"] not in tasks:
        test_task: dict[str, JSON] = {**_TEST_TASK, "depends_on": [shout]}
        return Reply(tool_calls=[_create(test_task)])
    logged = "decision_log" in names or any(
        r.name == "decision_query" and _DECISION in r.content for r in done
    )
    calls = []
    if "add_dependency" not in names:  # adding it twice is harmless: the second is a no-op
        test = tasks[str(_TEST_TASK["title"])]
        calls.append(
            Call("add_dependency", {"task_id": test, "depends_on": farewell, "kind": "blocks"})
        )
    if not logged:
        calls.append(
            Call(
                "decision_log",
                {
                    "node_type": "decision",
                    "title": _DECISION,
                    "description": "The tester need not wait for the whole shout task.",
                },
            )
        )
    if calls:
        return Reply(tool_calls=calls)
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


_DECISION = "Tests start at greet()'s interface milestone"
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
    # One tool call per step: a step whose call was interrupted is taken again (its effect is
    # unknown; each step here is safe to repeat or fails readably if it had landed).
    since = request.messages[brief_at:]
    step = sum(1 for m in since if isinstance(m, AssistantMessage)) - sum(
        1 for m in since if isinstance(m, ToolResultMessage) and _interrupted(m)
    )
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
