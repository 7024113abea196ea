"""Message priority tiers (SPEC §3.4), as the bus and the mailboxes see them.

The vocabulary itself (every message type and its tier) lives in :mod:`loomkin.core.messages`;
the bus only reads a type's tier back, including types from older logs.
"""

from __future__ import annotations

from loomkin.core.messages import TIER_RANK, tier_of_name

__all__ = ["TIER_RANK", "classify"]

classify = tier_of_name
"""The tier of a message type read from the wire or a log (undeclared types are ``normal``)."""
