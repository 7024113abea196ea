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
  first, a resume replaces a pause not yet applied and the other way round); steering texts
  accumulate and all land, in order, in the very next model call. A cancel that takes effect
  consumes the pause and the steering waiting beside it (they were about the work it ends).
* Every request gets exactly one outcome in the log: ``ControlApplied`` (with the latency
  from the request, so the UI and the benchmarks can show it) or ``ControlDropped`` (it was
  superseded or consumed). The lane remembers what it dropped (:meth:`ControlLane.take_dropped`)
  and the agent journals those outcomes in the same batch as the control that caused them, so
  a request without an outcome is exactly one the agent has not dealt with yet.
* **Durable.** The lane itself is not persisted: after a restart the agent's memory (a
  projection of its events) lists the requests without an outcome, and they are put back on
  the lane in request order (:meth:`ControlLane.add` again), which rebuilds the same
  supersessions. Each is then applied, or dropped, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loomkin.core.events import ControlDropped, ControlRequested
from loomkin.core.records import ControlAction, PauseMode
from loomkin.ids import AgentId, RequestId, SessionId

__all__ = [
    "Checkpoint",
    "ControlCommand",
    "ControlLane",
    "Directive",
    "Dropped",
    "dropped_events",
    "requeue",
]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Dropped:
    """A command the lane let go without applying it, and why."""

    command: ControlCommand
    reason: Literal["superseded", "cancelled"]
    by: str
    """The request id of the command that replaced or consumed it."""


@dataclass(slots=True)
class ControlLane:
    """Pending control state of one agent, folded from its control commands."""

    pause: ControlCommand | None = None
    cancel: ControlCommand | None = None
    resume: ControlCommand | None = None
    steers: list[ControlCommand] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    """Commands superseded or consumed, whose outcome the agent has not journaled yet."""

    def add(self, command: ControlCommand) -> None:
        """Record ``command``; a newer pause, resume or cancel supersedes what it replaces."""
        match command.action:
            case "pause":
                self._supersede(self.pause, command)
                self._supersede(self.resume, command)
                self.pause = command
                self.resume = None
            case "cancel":
                self._supersede(self.cancel, command)
                self.cancel = command
            case "resume":
                self._supersede(self.pause, command)
                self._supersede(self.resume, command)
                self.resume = command
                self.pause = None
            case "steer":
                self.steers.append(command)
            case "inspect":
                pass  # inspection is answered at once by the handle, never queued

    def _supersede(self, old: ControlCommand | None, new: ControlCommand) -> None:
        if old is not None:
            self.dropped.append(Dropped(command=old, reason="superseded", by=new.request_id))

    def take_dropped(self) -> list[Dropped]:
        """Return and forget the commands dropped since the last call (to journal them)."""
        dropped, self.dropped = self.dropped, []
        return dropped

    def pending(self) -> bool:
        """True when a pause, cancel or resume waits to be applied."""
        return self.pause is not None or self.cancel is not None or self.resume is not None

    def at(self, checkpoint: Checkpoint) -> Directive | None:
        """Return the directive that takes effect at ``checkpoint``, consuming it."""
        if self.cancel is not None:
            command, self.cancel = self.cancel, None
            # The cancel ends the work a waiting pause or steering text was about.
            consumed = [c for c in (self.pause, *self.steers) if c is not None]
            self.dropped.extend(
                Dropped(command=c, reason="cancelled", by=command.request_id) for c in consumed
            )
            self.pause = None
            self.steers = []
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


def requeue(
    lane: ControlLane, requests: list[tuple[ControlRequested, str | None]], *, now: float
) -> None:
    """Put journaled requests back on ``lane`` in request order (after a restart).

    ``requests`` comes from :meth:`~loomkin.agents.memory.AgentMemory.controls_to_requeue`:
    each request with ``None``, or with the id of the resolved request that superseded it (an
    older log's leftover), which goes straight to the dropped list. Adding them in order
    rebuilds the same supersessions the lane had made live.
    """
    for request, superseded_by in requests:
        command = ControlCommand(
            request_id=request.request_id,
            action=request.action,
            mode=request.mode,
            text=request.text,
            force=request.force,
            requested_at=now,
        )
        if superseded_by is None:
            lane.add(command)
        else:
            lane.dropped.append(Dropped(command=command, reason="superseded", by=superseded_by))


def dropped_events(
    lane: ControlLane, session_id: SessionId, agent_id: AgentId
) -> list[ControlDropped]:
    """Take the commands ``lane`` dropped and return their outcome events, to journal."""
    return [
        ControlDropped(
            session_id=session_id,
            agent_id=agent_id,
            request_id=RequestId(d.command.request_id),
            action=d.command.action,
            reason=d.reason,
            by=RequestId(d.by),
        )
        for d in lane.take_dropped()
    ]
