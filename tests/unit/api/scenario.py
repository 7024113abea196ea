"""A small scripted scenario for the web app's tests (a stand-in for ``loomkin.demo``).

The Concierge spawns a team ``build`` with a coder ``alice`` and creates two tasks, the second
depending on the first; the Orienter sends a brief; alice writes ``hello.py`` (a write, so it
asks for permission), then keeps looking around until the user steers her (a
``[User guidance]`` message in her request), then completes her tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.testing import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service.runtime import Loomkin
    from loomkin.service.session import Session

GOAL = "Write a hello world script"


def _results(request: ModelRequest) -> list[ToolResultMessage]:
    return [m for m in request.messages if isinstance(m, ToolResultMessage)]


def _guided(request: ModelRequest) -> bool:
    return any(
        isinstance(m, UserMessage) and m.text.startswith("[User guidance]")
        for m in request.messages
    )


def _concierge(request: ModelRequest) -> Reply:
    done = {r.name for r in _results(request)}
    if "team_spawn" not in done:
        roles = [{"name": "alice", "role": "coder"}]
        return Reply(
            text="Spawning a build team.",
            tool_calls=[Call("team_spawn", {"team_name": "build", "roles": roles})],
        )
    created = [r for r in _results(request) if r.name == "task_create"]
    if not created:
        args = {"title": "Write hello.py", "role": "coder", "team": "build"}
        return Reply(tool_calls=[Call("task_create", args)])
    if len(created) == 1:
        first = created[0].content.split("task ")[1].split()[0].strip("'.,:")
        args = {"title": "Review hello.py", "team": "build", "depends_on": [first]}
        return Reply(tool_calls=[Call("task_create", args)])
    return Reply(text="The build team is on it.")


def _orienter(request: ModelRequest) -> Reply:
    if not _results(request):
        brief = "Active goals: none. Recent activity: none."
        return Reply(tool_calls=[Call("peer_message", {"to": "concierge", "content": brief})])
    return Reply(text="Brief sent.")


def _coder(patience: int) -> Callable[[ModelRequest], Reply]:
    """The coder writes hello.py, looks around until steered (or ``patience`` runs out)."""

    def step(request: ModelRequest) -> Reply:
        results = _results(request)
        last = results[-1].name if results else None
        if last is None:
            content = "print('hello')\n"
            return Reply(tool_calls=[Call("file_write", {"path": "hello.py", "content": content})])
        if last == "task_complete":
            return Reply(text="Done.")
        polls = sum(1 for r in results if r.name == "directory_list")
        if _guided(request) or polls >= patience:
            return Reply(tool_calls=[Call("task_complete", {"result": "hello.py written"})])
        return Reply(tool_calls=[Call("directory_list", {"path": "."})])

    return step


def model_factory(pace_s: float = 0.0, patience: int = 2) -> Callable[[Role, str], Model]:
    """Return a ``(role, name) -> Model`` factory for the scenario."""

    def factory(role: Role, name: str) -> Model:
        fns = {"concierge": _concierge, "orienter": _orienter}
        fn = fns.get(role.name) or _coder(patience)
        return FunctionModel(fn, name="function:scenario", latency_s=pace_s)

    return factory


async def start_scenario(
    loomkin: Loomkin, project: Path, *, pace_s: float = 0.0, patience: int = 2
) -> Session:
    """Open a session on ``project`` with the scenario's models and send the goal."""
    (project / "README.md").write_text("# sample\n")
    session = await loomkin.open_session(
        project, model_factory=model_factory(pace_s, patience), title="scenario"
    )
    await session.send(GOAL)
    return session
