"""What the task service tells agents, as a port: the words are the agent layer's.

The task service decides *when* an agent hears about a task (it is assigned one, a task it
created ended, a predecessor it consumes published a chunk or finished) and appends those
messages atomically with the change. *What* the message says is prompt text, which belongs
to the agent layer (``loomkin.agents.notices``); the service receives it through this port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from loomkin.core.taskview import Handoff, TaskView

__all__ = ["TaskNotices"]


class TaskNotices(Protocol):
    """The texts of the task service's messages (readable, for a model)."""

    def assigned(self, view: TaskView, reason: str) -> str:
        """The task is now the recipient's (``reason``: why it was picked)."""
        ...

    def ended(
        self, view: TaskView, status: Literal["completed", "failed"], result: str | None
    ) -> str:
        """A task the recipient created ended."""
        ...

    def final_output(self, view: TaskView, result: str | None, handoff: Handoff) -> str:
        """A predecessor whose output the recipient's task consumes completed."""
        ...

    def partial_output(
        self, view: TaskView, seq: int, content: str, completed: int | None, total: int | None
    ) -> str:
        """A predecessor whose output the recipient's task consumes published a chunk."""
        ...
