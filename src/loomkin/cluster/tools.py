"""The shell of an agent runs on the worker the agent is leased to.

How this works and why:

* **What moves.** A coding agent's machine-hungry work is the shell: test suites, builds,
  linters. The host checks a call as always (arguments, permission policy, conflict
  detector) and journals it as started; :class:`PlacedTools` then sends it to the agent's
  worker (the same placement as its model calls, :mod:`loomkin.cluster.agents`), which runs
  the real ``shell`` tool there, its guard and its sandbox included, in the project
  directory at the same path (workers share the project, as they share the store), and
  answers with the text the model reads. The host journals the result. Every other tool
  (files, search, git, coordination) runs on the host, beside the session's state.
* **Fencing.** The request names the agent's epoch; a worker that does not hold the agent
  under it refuses before it runs anything, and the call goes to the agent's next worker.
* **A worker lost mid-command** (its key expired: killed, cut off) is reported to the model
  as interrupted, the way a restart reports a call cut off by a crash: the command may or
  may not have taken effect, and it is never run twice behind the model's back. A call the
  host abandons (the agent was cancelled) is cancelled on the worker, which kills the
  command's processes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.errors import ToolError
from loomkin.ids import AgentId, CallId, SessionId, TaskId, TeamId
from loomkin.tools.base import ToolContext
from loomkin.tools.builtin.shell import shell

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.msg import Msg
    from pydantic import BaseModel

    from loomkin.agents.context import AgentContext
    from loomkin.agents.settings import SessionSettings
    from loomkin.cluster.agents import AgentPlacer, Route
    from loomkin.tools.base import Tool

__all__ = ["PLACED_TOOLS", "PlacedTools", "run_placed_tool"]

PLACED_TOOLS = frozenset({"shell"})
"""Tools that run on the agent's worker; the others run on the session's host."""

_MOVES_PER_CALL = 2
_ANSWER_MARGIN_S = 60.0
"""How much longer than the command's own limit the host waits for the worker's answer."""


class _NotRun(Exception):
    """The worker did not run the call (gone before it, or does not hold the agent)."""

    def __init__(self, *, gone: bool) -> None:
        super().__init__()
        self.gone = gone
        """Nobody answered, or the worker's lease keeping failed (else it is alive and only
        gave the agent back): not chosen again for a while."""


class PlacedTools:
    """A :class:`~loomkin.agents.context.ToolRunner` that sends the shell to agents' workers."""

    def __init__(self, placer: AgentPlacer) -> None:
        self._placer = placer
        self.ran_remotely = 0
        """Tool calls a worker answered (tests and benchmarks)."""

    async def run(
        self, tool: Tool[AgentContext], args: BaseModel, call: ToolContext, deps: AgentContext
    ) -> str:
        if tool.name not in PLACED_TOOLS:
            return await tool.run(args, call, deps)
        placer = self._placer
        limit = deps.shell_policy.max_timeout_s + _ANSWER_MARGIN_S
        tried: list[str] = []
        for _ in range(_MOVES_PER_CALL + 1):
            route = await placer.route(call.agent_id)
            try:
                text = await self._remote(route, tool.name, args, call, limit)
            except _NotRun as exc:
                placer.lost(call.agent_id, route, shun=exc.gone)
                tried.append(route.worker_id)
                continue
            self.ran_remotely += 1
            return text
        raise ToolError(
            f"{tool.name} could not run: no worker took the call (tried {', '.join(tried)})"
        )

    async def _remote(
        self, route: Route, tool: str, args: BaseModel, call: ToolContext, limit: float
    ) -> str:
        placer = self._placer
        payload = {
            "session_id": placer.session_id,
            "agent_id": call.agent_id,
            "epoch": route.epoch,
            "tool": tool,
            "arguments": args.model_dump(mode="json"),
            "project_root": str(call.project_root),
            "call_id": call.call_id,
            "agent": call.agent_name,
            "team_id": call.team_id,
            "task_id": call.task_id,
            "role": call.role,
        }
        request = asyncio.get_running_loop().create_task(
            placer.nc.request(
                placer.names.worker_tools(route.worker_id),
                json.dumps(payload).encode(),
                timeout=limit,
            ),
            name=f"tool:{call.call_id}",
        )
        watch = placer.watch(call.agent_id, route)
        try:
            while not request.done():
                await asyncio.wait({request}, timeout=placer.check_s)
                if request.done():
                    break
                if not await watch.still_holds():
                    placer.lost(call.agent_id, route)
                    raise ToolError(
                        f"interrupted: worker {route.worker_id}, which ran this {tool} call, "
                        "stopped (it died, was cut off or shut down); the command may or may "
                        "not have taken effect: check before running it again"
                    )
        finally:
            # Abandoned, or no answer in time (the model is told it may not have run, and may
            # run it again): either way the worker kills the command.
            stop = not request.done() or _timed_out(request)
            if not request.done():
                request.cancel()
                await asyncio.wait({request})
            if stop:
                await placer.cancel(route, call.call_id)
        return _answer(request, route, tool)


def _timed_out(request: asyncio.Task[Msg]) -> bool:
    from nats.errors import TimeoutError as NatsTimeout

    return not request.cancelled() and isinstance(request.exception(), NatsTimeout)


def _answer(request: asyncio.Task[Msg], route: Route, tool: str) -> str:
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout

    try:
        reply = request.result()
    except NoRespondersError:
        raise _NotRun(gone=True) from None
    except NatsTimeout:
        raise ToolError(
            f"worker {route.worker_id} gave no answer for this {tool} call in time; it may or "
            "may not have run"
        ) from None
    try:
        answer = json.loads(reply.data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ToolError(f"worker {route.worker_id} answered this {tool} call with garbage")
    if answer.get("refused") is True:  # shunned only if its lease keeping is in trouble
        raise _NotRun(gone=answer.get("stalled") is True)
    text = answer.get("text")
    if not isinstance(text, str):
        raise ToolError(f"worker {route.worker_id} answered this {tool} call without a text")
    if answer.get("ok") is not True:
        raise ToolError(text)
    return text


class _WorkerDeps:
    """What the placed tools need on the worker (the shell: its policy)."""

    def __init__(self, settings: SessionSettings) -> None:
        self.shell_policy = settings.shell_policy


async def run_placed_tool(
    body: dict[str, object], call_id: str, settings_for: Callable[[Path], SessionSettings]
) -> str:
    """Run the tool call ``body`` (a worker's side of :class:`PlacedTools`).

    Raises:
        ToolError: the call is malformed, not a placed tool, or the tool failed.
    """
    name = body.get("tool")
    if name not in PLACED_TOOLS:
        raise ToolError(
            f"{name!r} does not run on a worker (only {', '.join(sorted(PLACED_TOOLS))})"
        )
    project = Path(str(body.get("project_root") or ""))
    if not project.is_absolute() or not await asyncio.to_thread(project.is_dir):
        raise ToolError(
            f"the project directory {str(project)!r} is not on this worker: workers must "
            "reach the project at the same path as the session's host"
        )
    task_id = body.get("task_id")
    ctx = ToolContext(
        project_root=project,
        agent_id=AgentId(str(body.get("agent_id"))),
        agent_name=str(body.get("agent") or ""),
        team_id=TeamId(str(body.get("team_id") or "")),
        session_id=SessionId(str(body.get("session_id"))),
        call_id=CallId(call_id),
        task_id=TaskId(task_id) if isinstance(task_id, str) else None,
        role=str(body.get("role") or ""),
    )
    settings = await asyncio.to_thread(settings_for, project)
    arguments = json.dumps(body.get("arguments"))
    args = shell.parse_args(arguments)
    return await shell.run(args, ctx, _WorkerDeps(settings))
