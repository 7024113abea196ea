"""Walking a log end to end to verify it: the body of every backend's ``check()``.

:class:`ChainCheck` verifies rows in position order and stops at the first problem: a gap, a
hash that does not match (the row, or one before it, was changed or removed), or a row that
does not decode. A hash mismatch is reported before a decode failure on purpose: a row that
hashes right but does not decode was written intact by a newer Loomkin, not damaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.store import CheckReport
from loomkin.errors import StoreError
from loomkin.persistence._chain import GENESIS, chain_hash
from loomkin.persistence._rows import decode_row

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from loomkin.persistence._rows import StoredRow

__all__ = ["ChainCheck", "walk_log"]

_PAGE = 1000
"""Rows read per page, so a check of a long log holds little memory."""


@dataclass(slots=True)
class ChainCheck:
    """Verifies rows fed in position order; remembers how far the log verified."""

    checked: int = 0
    """Rows verified good so far."""
    last_position: int = 0
    """Position of the last good row."""
    head: bytes = field(default=GENESIS)
    """Hash of the last good row."""

    def feed(self, row: StoredRow) -> tuple[int, str] | None:
        """Verify the next row; return ``(position, why)`` for the first problem, else ``None``.

        ``row`` holds the :data:`CHAIN_COLUMNS`.
        """
        expected = self.last_position + 1
        position, stored = row[0], row[9]
        if position != expected:
            if isinstance(position, int) and position > expected:
                missing = (
                    f"{expected}" if position == expected + 1 else f"{expected}–{position - 1}"
                )
                return expected, f"positions are not gapless: {missing} missing before {position}"
            return expected, f"expected position {expected}, found {position!r}"
        if not isinstance(stored, bytes | bytearray | memoryview) or len(stored) != 32:
            return expected, "the event has no chain hash (its hash column is missing or damaged)"
        try:
            computed = chain_hash(self.head, row)
        except (TypeError, ValueError) as exc:
            return expected, f"the row's columns have the wrong types ({exc})"
        if computed != bytes(stored):
            return expected, (
                "the hash chain is broken: the stored hash does not match the event's content "
                "and its predecessor's hash (this row, or one before it, was changed or removed)"
            )
        try:
            decode_row(row[:8])
        except StoreError as exc:  # EventDecodeError, SchemaVersionError
            return expected, f"the event does not decode: {exc}"
        self.checked += 1
        self.last_position = expected
        self.head = computed
        return None

    def report(self, bad_position: int | None = None, problem: str | None = None) -> CheckReport:
        """The report of everything fed so far, with the problem that stopped it (if any)."""
        return CheckReport(
            events_checked=self.checked,
            last_good_position=self.last_position,
            head=self.head.hex(),
            bad_position=bad_position,
            problem=problem,
        )


async def walk_log(
    fetch: Callable[[int, int], Awaitable[Sequence[StoredRow]]],
) -> tuple[ChainCheck, tuple[int | None, str] | None]:
    """Feed the whole log through a :class:`ChainCheck`, a page at a time.

    Args:
        fetch: ``fetch(after, limit)`` returns up to ``limit`` rows with position > ``after``
            in position order, holding the :data:`CHAIN_COLUMNS`.

    Returns:
        The check (how far it verified) and the first problem as ``(position, why)``, or
        ``None`` when every row verified. A :class:`StoreError` raised by ``fetch`` (a
        damaged page) is reported as a problem at the next position, not raised.
    """
    check = ChainCheck()
    while True:
        try:
            rows = await fetch(check.last_position, _PAGE)
        except StoreError as exc:
            return check, (check.last_position + 1, f"the store cannot read on: {exc}")
        if not rows:
            return check, None
        for row in rows:
            problem = check.feed(row)
            if problem is not None:
                return check, problem
