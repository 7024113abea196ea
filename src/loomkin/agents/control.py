"""The control lane: pause, resume, steer, cancel — and the checkpoints that read it.

How this works and why:

* A control request (from the Python API, the CLI or the HTTP API) is first journaled as a
  ``ControlRequested`` event, then put on the agent's control lane, which sits above the
  four message tiers. Nothing interrupts the agent from outside: the agent's own loop reads
  the lane at checkpoints and acts there, so a tool is never cut in half.
* Checkpoints: between two chunks of a streamed model response (``stream``), after a model
  response (``after_model``), after each tool (``after_tool``) and before a model call
  (``before_model``). An ``asap`` pause takes effect at any of them, abandoning the stream
  if one is in flight; an ``at_boundary`` pause waits for a step boundary (not ``stream``).
  A cancel acts like an ``asap`` pause that also ends the task.
* A newer directive of the same kind supersedes an older one (a second pause replaces the
  first); steering texts accumulate and all land, in order, in the very next model call.
* Each directive is answered by a ``ControlApplied`` event carrying the latency from the
  request, so the UI and the benchmarks can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loomkin.core.records import ControlAction, PauseMode

__all__ = ["Checkpoint", "ControlCommand", "ControlLane", "Directive"]

Checkpoint = Literal["stream", "after_model", "after_tool", "before_model", "idle", "permission"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlCommand:
    """One request on an agent's control lane."""

    request_id: str
    action: ControlAction
    mode: PauseMode = "asap"
    text: str = ""
    force: bool = False
    requested_at: float
    """Monotonic time of the request (loop time; virtual under test)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """What a checkpoint decided: stop the loop to pause or to cancel."""

    action: Literal["pause", "cancel"]
    command: ControlCommand
    reason: str = "paused by user"


@dataclass(slots=True)
class ControlLane:
    """Pending control state of one agent, folded from its control commands."""

    pause: ControlCommand | None = None
    cancel: ControlCommand | None = None
    resume: ControlCommand | None = None
    steers: list[ControlCommand] = field(default_factory=list)

    def add(self, command: ControlCommand) -> None:
        """Record ``command``; a newer pause or cancel supersedes an older one."""
        match command.action:
            case "pause":
                self.pause = command
                self.resume = None
            case "cancel":
                self.cancel = command
            case "resume":
                self.resume = command
                self.pause = None
            case "steer":
                self.steers.append(command)
            case "inspect":
                pass  # inspection is answered at once by the handle, never queued

    def pending(self) -> bool:
        """True when a pause, cancel or resume waits to be applied."""
        return self.pause is not None or self.cancel is not None or self.resume is not None

    def at(self, checkpoint: Checkpoint) -> Directive | None:
        """Return the directive that takes effect at ``checkpoint``, consuming it."""
        if self.cancel is not None:
            command, self.cancel = self.cancel, None
            self.pause = None
            return Directive(action="cancel", command=command, reason="cancelled by user")
        pause = self.pause
        if pause is None:
            return None
        if checkpoint == "stream" and pause.mode != "asap":
            return None
        self.pause = None
        return Directive(action="pause", command=pause)

    def steer_now(self) -> bool:
        """True when a steer asks to cut the model's current answer short (mode ``asap``).

        The answer streamed so far is kept and the model is asked again at once with the
        guidance, so steering takes effect within one stream chunk (SPEC §4); an
        ``at_boundary`` steer waits for the answer to finish.
        """
        return any(command.mode == "asap" for command in self.steers)

    def take_steers(self) -> list[ControlCommand]:
        """Return and clear the steering texts waiting for the next model call."""
        steers, self.steers = self.steers, []
        return steers

    def take_resume(self) -> ControlCommand | None:
        """Return and clear a pending resume."""
        resume, self.resume = self.resume, None
        return resume
