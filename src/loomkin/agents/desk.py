"""The permission desk of a session: open prompts, their answers, and the automatic responder.

An agent that needs the user's permission opens a prompt here and awaits its answer. The
answer comes from the user (the facade's ``answer_permission``, by request id), from the
session's responder (``--yes``, the demo) or from a forced pause, which cancels the prompt.
The desk hands the responder a :class:`PermissionPrompt` record, never a live agent.

The answer's future exists before the request is journaled: the UI reads the log, so an
answer can arrive as soon as the request is in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loomkin.core.events import JSON
from loomkin.errors import NotFound

if TYPE_CHECKING:
    from loomkin.core.records import PermissionDecision
    from loomkin.runtime.supervisor import Supervisor

__all__ = ["PermissionAnswer", "PermissionDesk", "PermissionPrompt", "PermissionResponder"]

PermissionAnswer = Literal["allow_once", "allow_always", "deny", "force_pause"]
"""What ends a prompt: a decision, or a forced pause that cancelled it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionPrompt:
    """A permission prompt waiting for an answer."""

    request_id: str
    """Answer the prompt with this id."""
    agent_id: str
    agent: str
    """The asking agent's name."""
    tool: str
    category: str
    """``write``, ``execute``, ... (what the permission policy decides on)."""
    arguments: dict[str, JSON]
    """The call's validated arguments."""
    target: str
    """The path or command the call acts on."""


PermissionResponder = Callable[[PermissionPrompt], Awaitable["PermissionDecision | None"]]
"""Answers a prompt on behalf of the user (``--yes``, the demo); ``None`` leaves it to the user."""


@dataclass(slots=True)
class _Open:
    prompt: PermissionPrompt
    future: asyncio.Future[tuple[PermissionAnswer, str]]


class PermissionDesk:
    """Open permission prompts of one session (see the module docstring)."""

    def __init__(self, *, supervisor: Supervisor, group: str) -> None:
        self._supervisor = supervisor
        self._group = group
        self._open: dict[str, _Open] = {}
        self.responder: PermissionResponder | None = None
        """Set by the facade (``Session.set_permission_responder``); ``None``: ask the user."""

    def open(self, prompt: PermissionPrompt) -> asyncio.Future[tuple[PermissionAnswer, str]]:
        """Open ``prompt``; the future resolves with the answer and who gave it."""
        future: asyncio.Future[tuple[PermissionAnswer, str]]
        future = asyncio.get_running_loop().create_future()
        self._open[prompt.request_id] = _Open(prompt, future)
        return future

    def asked(self, request_id: str) -> None:
        """The prompt is journaled: let the responder answer it, if one is set."""
        responder, entry = self.responder, self._open.get(request_id)
        if responder is None or entry is None:
            return

        async def respond() -> None:
            decision = await responder(entry.prompt)
            if decision is not None:
                self._resolve(request_id, decision, "auto")

        self._supervisor.run(f"permission:{request_id}", respond, group=self._group)

    def close(self, request_id: str) -> None:
        """Forget the prompt (it was answered, or its agent stopped waiting)."""
        self._open.pop(request_id, None)

    def answer(self, request_id: str, decision: PermissionDecision, *, by: str = "user") -> None:
        """Answer the open prompt ``request_id``.

        Raises:
            NotFound: no such prompt is open.
        """
        if request_id not in self._open:
            raise NotFound(f"no pending permission request {request_id!r}")
        self._resolve(request_id, decision, by)

    def force_pause(self, agent_id: str) -> None:
        """Cancel the prompt ``agent_id`` waits on, if any (a forced pause)."""
        for request_id, entry in list(self._open.items()):
            if entry.prompt.agent_id == agent_id:
                self._resolve(request_id, "force_pause", "force_pause")

    def prompts(self) -> list[PermissionPrompt]:
        """The open prompts, oldest first."""
        return [entry.prompt for entry in self._open.values()]

    def _resolve(self, request_id: str, answer: PermissionAnswer, by: str) -> None:
        entry = self._open.get(request_id)
        if entry is not None and not entry.future.done():
            entry.future.set_result((answer, by))
