"""A bounded priority mailbox with a control lane: where an agent's incoming traffic waits.

How this works and why:

* Messages travel in three tiers, urgent → high → normal, FIFO within a tier. Messages of the
  ``ignore`` tier (status chatter) are dropped at arrival and counted: they never reach a model.
  :meth:`Mailbox.get_nowait` and :meth:`Mailbox.drain` hand out the highest tier first.
* The control lane (pause, resume, steer, cancel, inspect…) is separate and sits above every
  tier; it is generic over the command type, which the agent layer defines.
* ``deliver`` never blocks, so a publisher can never deadlock on a recipient. The mailbox is
  bounded by ``capacity`` messages; overflow policy: when full, the oldest message of the
  lowest non-empty tier *below* the incoming message's tier is dropped (and counted) to make
  room; if no tier is below it, the incoming message is rejected (and counted). So an urgent
  message is never dropped in favour of a lower tier, and a flood of normal chatter can never
  push out an assignment.
* Thousands of agents sit idle most of the time, so an idle mailbox is a handful of slots: the
  tier deques, the control deque and the waiter list exist only while they hold something.
* The mailbox is generic over its message type ``M`` (anything with a ``tier``, normally
  :class:`loomkin.bus.BusMessage`): the runtime layer may not import the bus layer, and the
  structural bound keeps ``Mailbox[BusMessage, C]`` a :class:`loomkin.bus.Subscriber`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from loomkin.errors import PolicyRefused, UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.core.records import Tier

__all__ = ["CONTROL_CAPACITY", "Mailbox", "MailboxStatistics", "Tiered"]

CONTROL_CAPACITY = 64
"""Most control commands a mailbox holds; more raise :class:`~loomkin.errors.PolicyRefused`."""


class Tiered(Protocol):
    """A message with a priority tier (:class:`loomkin.bus.BusMessage` is one)."""

    @property
    def tier(self) -> Tier:
        """The message's priority tier."""
        ...


M = TypeVar("M", bound=Tiered)
C = TypeVar("C")

_DRAIN_DEPTH: dict[str, int] = {"urgent": 1, "high": 2, "normal": 3, "ignore": 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxStatistics:
    """Counters of one :class:`Mailbox`."""

    capacity: int
    size: int
    """Messages waiting (all tiers)."""
    urgent: int
    high: int
    normal: int
    control: int
    """Control commands waiting."""
    accepted: int
    """Messages accepted since creation."""
    ignored: int
    """``ignore``-tier messages dropped at arrival."""
    dropped: int
    """Queued lower-tier messages dropped to make room for a higher-tier one."""
    rejected: int
    """Incoming messages refused because the mailbox was full of equal or higher tiers."""


class Mailbox(Generic[M, C]):
    """Bounded priority mailbox plus control lane (see the module docstring for the policy).

    Args:
        capacity: Most messages held across all tiers (control commands not included).
        on_arrival: Called after a message is accepted or a control command is put (for
            example to wake or spawn the agent's task); must not block.
    """

    __slots__ = (
        "_accepted",
        "_capacity",
        "_control",
        "_control_waiters",
        "_dropped",
        "_high",
        "_ignored",
        "_normal",
        "_on_arrival",
        "_rejected",
        "_size",
        "_urgent",
        "_waiters",
    )

    def __init__(self, capacity: int = 1000, on_arrival: Callable[[], None] | None = None) -> None:
        if capacity < 1:
            raise UserError(f"mailbox capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._on_arrival = on_arrival
        self._urgent: deque[M] | None = None
        self._high: deque[M] | None = None
        self._normal: deque[M] | None = None
        self._control: deque[C] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self._control_waiters: list[asyncio.Future[None]] | None = None
        self._size = 0
        self._accepted = 0
        self._ignored = 0
        self._dropped = 0
        self._rejected = 0

    # -- messages ------------------------------------------------------------------------------

    def deliver(self, message: M) -> None:
        """Accept ``message`` without blocking, or drop it by the overflow policy."""
        tier = message.tier
        if tier == "ignore":
            self._ignored += 1
            return
        if self._size >= self._capacity and not self._make_room(tier):
            self._rejected += 1
            return
        if tier == "urgent":
            q = self._urgent
            if q is None:
                q = self._urgent = deque()
        elif tier == "high":
            q = self._high
            if q is None:
                q = self._high = deque()
        else:
            q = self._normal
            if q is None:
                q = self._normal = deque()
        q.append(message)
        self._size += 1
        self._accepted += 1
        self._arrived()

    def _make_room(self, tier: Tier) -> bool:
        """Drop the oldest message of the lowest non-empty tier below ``tier``."""
        if tier != "normal" and self._normal:
            self._normal.popleft()
            if not self._normal:
                self._normal = None
        elif tier == "urgent" and self._high:
            self._high.popleft()
            if not self._high:
                self._high = None
        else:
            return False
        self._size -= 1
        self._dropped += 1
        return True

    def get_nowait(self) -> M | None:
        """Return the oldest message of the highest non-empty tier, or ``None`` if empty."""
        if self._urgent:
            msg = self._urgent.popleft()
            if not self._urgent:
                self._urgent = None
        elif self._high:
            msg = self._high.popleft()
            if not self._high:
                self._high = None
        elif self._normal:
            msg = self._normal.popleft()
            if not self._normal:
                self._normal = None
        else:
            return None
        self._size -= 1
        return msg

    def drain(self, max_tier: Tier = "normal") -> list[M]:
        """Remove and return every message of tier ``max_tier`` or higher, highest tier first.

        ``drain("urgent")`` takes only urgent messages; ``drain("normal")`` takes everything.
        """
        out: list[M] = []
        depth = _DRAIN_DEPTH[max_tier]
        if self._urgent:
            out.extend(self._urgent)
            self._urgent = None
        if depth >= 2 and self._high:
            out.extend(self._high)
            self._high = None
        if depth >= 3 and self._normal:
            out.extend(self._normal)
            self._normal = None
        self._size -= len(out)
        return out

    def has_urgent(self) -> bool:
        """Return whether an urgent message is waiting."""
        return bool(self._urgent)

    def __len__(self) -> int:
        return self._size

    # -- control lane --------------------------------------------------------------------------

    def put_control(self, cmd: C) -> None:
        """Queue a control command (taken before any message).

        Raises:
            PolicyRefused: the control lane already holds ``CONTROL_CAPACITY`` commands.
        """
        control = self._control
        if control is None:
            control = self._control = deque()
        elif len(control) >= CONTROL_CAPACITY:
            raise PolicyRefused(
                f"control lane is full ({CONTROL_CAPACITY} commands waiting); "
                f"command {cmd!r} was not queued"
            )
        control.append(cmd)
        _wake(self._control_waiters)
        self._control_waiters = None
        self._arrived()

    def take_control(self) -> C | None:
        """Return the oldest waiting control command, or ``None``."""
        control = self._control
        if not control:
            return None
        cmd = control.popleft()
        if not control:
            self._control = None
        return cmd

    def has_control(self) -> bool:
        """Return whether a control command is waiting."""
        return bool(self._control)

    # -- waiting -------------------------------------------------------------------------------

    def _arrived(self) -> None:
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            _wake(waiters)
        if self._on_arrival is not None:
            self._on_arrival()

    async def wait(self) -> None:
        """Return as soon as a message or a control command is waiting."""
        if self._size or self._control:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = []
        waiters.append(fut)
        try:
            await fut
        finally:
            if self._waiters is waiters:
                waiters.remove(fut)
                if not waiters:
                    self._waiters = None

    async def wait_control(self) -> None:
        """Return as soon as a control command is waiting (messages do not count).

        What an agent in the middle of a model call waits on beside the stream: a pause
        or a cancel must land before the next chunk, a message can wait for the answer.
        """
        if self._control:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._control_waiters
        if waiters is None:
            waiters = self._control_waiters = []
        waiters.append(fut)
        try:
            await fut
        finally:
            if self._control_waiters is waiters:
                waiters.remove(fut)
                if not waiters:
                    self._control_waiters = None

    def statistics(self) -> MailboxStatistics:
        """Return the mailbox's counters."""
        return MailboxStatistics(
            capacity=self._capacity,
            size=self._size,
            urgent=len(self._urgent or ()),
            high=len(self._high or ()),
            normal=len(self._normal or ()),
            control=len(self._control or ()),
            accepted=self._accepted,
            ignored=self._ignored,
            dropped=self._dropped,
            rejected=self._rejected,
        )


def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
    for fut in waiters or ():
        if not fut.done():
            fut.set_result(None)
