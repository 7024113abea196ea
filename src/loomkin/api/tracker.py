"""What the page needs beyond the runtime's projections: open prompts and queued pauses.

The agents' memories know *that* a permission prompt is pending but not the call's arguments,
and nothing records that a pause waits behind a prompt. :class:`PromptTracker` folds the few
events that say so, as a log listener; :meth:`PromptTracker.start` replays the log first and
buffers live events meanwhile, so no event is missed or applied out of order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import (
    JSON,
    ControlApplied,
    ControlRequested,
    PermissionRequested,
    PermissionResolved,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.core.events import RecordedEvent
    from loomkin.runtime.eventlog import EventLog

__all__ = ["OpenPrompt", "PromptTracker"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPrompt:
    """A permission prompt that was asked and not answered yet."""

    request_id: str
    agent_id: str
    tool: str
    category: str
    arguments: dict[str, JSON]
    target: str


class PromptTracker:
    """Open permission prompts (with their arguments) and pauses not yet applied."""

    def __init__(self) -> None:
        self.prompts: dict[str, OpenPrompt] = {}
        """Open prompts by request id."""
        self._pauses: dict[str, set[str]] = {}
        self._position = 0
        self._buffer: list[RecordedEvent] | None = None
        self._remove: Callable[[], None] | None = None

    async def start(self, log: EventLog) -> None:
        """Replay the log, then follow it live."""
        self._buffer = []
        self._remove = log.add_listener(self.on_event)
        try:
            for recorded in await log.read():
                self._apply(recorded)
        finally:
            buffered, self._buffer = self._buffer, None
        for recorded in buffered:
            self._apply(recorded)

    def close(self) -> None:
        """Stop following the log."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    def on_event(self, recorded: RecordedEvent) -> None:
        """Log listener (buffers while :meth:`start` replays)."""
        if self._buffer is not None:
            self._buffer.append(recorded)
        else:
            self._apply(recorded)

    def pause_queued(self, agent_id: str) -> bool:
        """Whether a pause of the agent was asked and has not taken effect."""
        return bool(self._pauses.get(agent_id))

    def _apply(self, recorded: RecordedEvent) -> None:
        if recorded.position <= self._position:
            return
        self._position = recorded.position
        match recorded.event:
            case PermissionRequested() as e:
                self.prompts[e.request_id] = OpenPrompt(
                    request_id=e.request_id,
                    agent_id=e.agent_id,
                    tool=e.tool,
                    category=e.category,
                    arguments=e.arguments,
                    target=e.target,
                )
            case PermissionResolved() as e:
                self.prompts.pop(e.request_id, None)
            case ControlRequested(action="pause") as e:
                self._pauses.setdefault(e.agent_id, set()).add(e.request_id)
            case ControlRequested(action="resume") as e:
                self._pauses.pop(e.agent_id, None)
            case ControlApplied() as e:
                self._pauses.get(e.agent_id, set()).discard(e.request_id)
            case _:
                pass
