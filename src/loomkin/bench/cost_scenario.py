"""The cost benchmark's coding scenario, scripted: one agent alone, or a team.

Four tasks on the sample project (two modules, their tests, a usage guide); the tests wait
for both modules. The model's answers are scripted, everything else is the real runtime:
tools write real files, tasks and dependencies go through the real scheduler.

* Alone, one coder gets the whole goal and does the four tasks one after another in one
  transcript.
* As a team, the Concierge (briefed by the Orienter) spawns two coders and a tester,
  creates the tasks with their dependencies, and summarises when they are done; the
  workers follow each task's steps.

A model call takes simulated time, ``scale × (BASE_S + characters written / CHARS_PER_S)``
(writing code is what takes a model long), so the makespans compare one agent's sequence
of calls with the team's parallel ones.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, SystemMessage, ToolResultMessage, UserMessage
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.core.events.base import JSON
    from loomkin.llm.model import Model, ModelRequest

__all__ = ["BASE_S", "CHARS_PER_S", "GOAL", "TASKS", "solo_model", "team_model"]

BASE_S = 2.0
"""Model seconds every call takes (reading the prompt, the first token)."""
CHARS_PER_S = 200.0
"""Characters a model writes per second (about 50 tokens/s)."""

GOAL = (
    "Add greetings.formal and greetings.i18n modules, tests for both, and a usage guide "
    "in docs/USAGE.md."
)


def _module(name: str, count: int) -> str:
    functions = "".join(
        f"def {name}_{i}(who: str) -> str:\n"
        f'    """Return {name} greeting number {i} for ``who``."""\n'
        f'    return f"{name} {i}, {{who}}"\n\n\n'
        for i in range(count)
    )
    return f'"""{name.capitalize()} greetings."""\n\n\n{functions}'


def _tests(count: int) -> str:
    cases = "".join(
        f"    def test_{kind}_{i}(self) -> None:\n"
        f'        self.assertIn("Ada", {kind}_{i}("Ada"))\n\n'
        for kind in ("formal", "i18n")
        for i in range(0, count, 3)
    )
    imports = ", ".join(f"{kind}_{i}" for kind in ("formal", "i18n") for i in range(0, count, 3))
    return (
        "import unittest\n\n"
        "from greetings.formal import *  # noqa: F403\n"
        "from greetings.i18n import *  # noqa: F403\n"
        f"# uses {imports}\n\n\nclass MoreTest(unittest.TestCase):\n{cases}"
    )


_GUIDE = "# Using greetings\n\n" + "".join(
    f"- `{kind}_{i}(who)` returns {kind} greeting {i}.\n"
    for kind in ("formal", "i18n")
    for i in range(12)
)


def _doc_fix(path: str, old: str, new: str) -> tuple[str, dict[str, JSON]]:
    return ("file_edit", {"path": path, "old_string": old, "new_string": new})


# Each task: (key, title, role, steps): what a careful agent does (look around, write, check
# what it wrote, fix it). A team's worker ends each task with task_complete, which the agent
# working alone does not need; emit_milestone only matters to a team.
TASKS: tuple[tuple[str, str, str, tuple[tuple[str, dict[str, JSON]], ...]], ...] = (
    (
        "formal",
        "Add greetings.formal",
        "coder",
        (
            ("file_read", {"path": "greetings/core.py"}),
            ("file_read", {"path": "greetings/__init__.py"}),
            ("content_search", {"pattern": "def greet"}),
            ("file_write", {"path": "greetings/formal.py", "content": _module("formal", 25)}),
            ("file_read", {"path": "greetings/formal.py"}),
            _doc_fix("greetings/formal.py", '"""Formal greetings."""', '"""Formal greetings."""\n'),
            ("emit_milestone", {"name": "interface", "note": "formal_0 .. formal_24"}),
        ),
    ),
    (
        "i18n",
        "Add greetings.i18n",
        "coder",
        (
            ("file_read", {"path": "greetings/core.py"}),
            ("directory_list", {"path": "greetings"}),
            ("file_write", {"path": "greetings/i18n.py", "content": _module("i18n", 25)}),
            ("file_read", {"path": "greetings/i18n.py"}),
            _doc_fix(
                "greetings/i18n.py", '"""I18n greetings."""', '"""Greetings in many languages."""'
            ),
        ),
    ),
    (
        "tests",
        "Test formal and i18n",
        "tester",
        (
            ("file_read", {"path": "tests/test_core.py"}),
            ("file_read", {"path": "greetings/formal.py"}),
            ("file_read", {"path": "greetings/i18n.py"}),
            ("file_write", {"path": "tests/test_more.py", "content": _tests(25)}),
            ("file_read", {"path": "tests/test_more.py"}),
            _doc_fix("tests/test_more.py", "import unittest\n", "import unittest  # stdlib only\n"),
        ),
    ),
    (
        "docs",
        "Write docs/USAGE.md",
        "coder",
        (
            ("file_read", {"path": "README.md"}),
            ("file_read", {"path": "greetings/core.py"}),
            ("file_write", {"path": "docs/USAGE.md", "content": _GUIDE}),
            ("file_read", {"path": "docs/USAGE.md"}),
            _doc_fix("docs/USAGE.md", "# Using greetings", "# Using the greetings package"),
        ),
    ),
)


class _Timed:
    """Scripted answers that take simulated time (see the module docstring)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    async def answer(self, reply: Reply) -> Reply:
        written = len(reply.text) + sum(len(c.arguments_text()) for c in reply.tool_calls)
        await asyncio.sleep(self.scale * (BASE_S + written / CHARS_PER_S))
        return reply


def solo_model(scale: float) -> Model:
    """One coder doing every task in turn, in one transcript."""
    timed = _Timed(scale)
    steps = [Reply(tool_calls=[Call(tool, args)]) for _k, _t, _r, s in TASKS for tool, args in s]
    steps = [s for s in steps if s.tool_calls[0].name != "emit_milestone"]
    steps.append(Reply(text="Done: formal and i18n modules, their tests and docs/USAGE.md."))

    answered = 0  # counted here: a compacted transcript no longer shows every step

    async def fn(request: ModelRequest) -> Reply:
        nonlocal answered
        if _summary_request(request):
            return await timed.answer(_SUMMARY)
        answered += 1
        return await timed.answer(steps[min(answered - 1, len(steps) - 1)])

    return FunctionModel(fn, name="scripted:solo")


def team_model(role: Role, name: str, scale: float) -> Model:
    """The scripted model of one team member."""
    timed = _Timed(scale)
    script = {"concierge": _concierge, "orienter": _orienter}.get(role.name, _worker)

    async def fn(request: ModelRequest) -> Reply:
        if _summary_request(request):
            return await timed.answer(_SUMMARY)
        return await timed.answer(script(request))

    return FunctionModel(fn, name=f"scripted:{name}")


_SUMMARY = Reply(text="Earlier: read the package, wrote and checked the files named above.")


def _summary_request(request: ModelRequest) -> bool:
    """A compaction's request to summarise earlier turns (see agents.compaction)."""
    first = request.messages[0] if request.messages else None
    return isinstance(first, SystemMessage) and first.text.startswith("You compact")


def _results(request: ModelRequest) -> list[ToolResultMessage]:
    return [m for m in request.messages if isinstance(m, ToolResultMessage)]


def _orienter(request: ModelRequest) -> Reply:
    if not _results(request):
        return Reply(tool_calls=[Call("directory_list", {"path": "."})])
    if not any(r.name == "peer_message" for r in _results(request)):
        brief = "## Session brief\nA small greetings package with unittest tests; no open work."
        return Reply(tool_calls=[Call("peer_message", {"to": "concierge", "content": brief})])
    return Reply(text="Briefed the concierge.")


_CREATED = re.compile(r"Created task (\S+) '([^']*)'")


def _concierge(request: ModelRequest) -> Reply:
    results = _results(request)
    created = {title: task_id for r in results for task_id, title in _CREATED.findall(r.content)}
    if not any(r.name == "team_spawn" for r in results):
        roles: JSON = [
            {"name": "ada", "role": "coder"},
            {"name": "bo", "role": "coder"},
            {"name": "cy", "role": "tester"},
        ]
        calls = [Call("team_spawn", {"team_name": "builders", "roles": roles})]
        calls += [
            Call("task_create", {"title": title, "role": role, "team": "builders"})
            for key, title, role, _s in TASKS
            if key != "tests"
        ]
        return Reply(text="Planning the work.", tool_calls=calls)
    tests_title = next(title for key, title, _r, _s in TASKS if key == "tests")
    if tests_title not in created:
        depends = [created[title] for key, title, _r, _s in TASKS if key in ("formal", "i18n")]
        args: dict[str, JSON] = {
            "title": tests_title,
            "role": "tester",
            "team": "builders",
            "depends_on": list(depends),
        }
        return Reply(tool_calls=[Call("task_create", args)])
    finished = sum(
        isinstance(m, UserMessage) and m.text.startswith("[Task finished]")
        for m in request.messages
    )
    if finished >= len(TASKS):
        return Reply(text="All done: both modules, their tests and docs/USAGE.md are in place.")
    return Reply(text="Noted.")


def _worker(request: ModelRequest) -> Reply:
    brief_at = None
    for i, message in enumerate(request.messages):
        if isinstance(message, UserMessage) and message.text.startswith("[Task assigned]"):
            brief_at = i
    if brief_at is None:
        return Reply(text="Nothing to do.")
    brief = request.messages[brief_at]
    assert isinstance(brief, UserMessage)
    task = next((t for t in TASKS if t[1] in brief.text.split("\n", 1)[0]), None)
    if task is None:
        return Reply(text="Nothing to do.")
    key, _title, _role, steps = task
    step = sum(isinstance(m, AssistantMessage) for m in request.messages[brief_at:])
    if step < len(steps):
        tool, args = steps[step]
        return Reply(tool_calls=[Call(tool, args)])
    if step == len(steps):
        files = [str(a["path"]) for t, a in steps if t == "file_write"]
        result: dict[str, JSON] = {"result": f"{key} done", "files_changed": list(files)}
        return Reply(tool_calls=[Call("task_complete", result)])
    return Reply(text=f"Done: {key}.")
