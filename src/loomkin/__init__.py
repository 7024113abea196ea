"""Loomkin: self-organizing teams of LLM coding agents you can pause, inspect and steer.

The public API is small: open a :class:`Loomkin` runtime on an event store, open a
:class:`Session` on a project, send it goals, subscribe to its events, and control its
agents. Everything the CLI and the web app do goes through it.

The names are imported on first use (a module ``__getattr__``): ``import loomkin.cli.main``
or ``import loomkin.errors`` must not load the whole runtime, so that a CLI command that
calls no model starts at once (SPEC §4). ``from loomkin import Loomkin`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from loomkin.errors import LoomkinError, UserError

if TYPE_CHECKING:
    from loomkin.agents import Budgets, Role, SessionSettings
    from loomkin.core.events import Event, RecordedEvent
    from loomkin.service import AgentInfo, Loomkin, Session, Summary

__all__ = [
    "AgentInfo",
    "Budgets",
    "Event",
    "Loomkin",
    "LoomkinError",
    "RecordedEvent",
    "Role",
    "Session",
    "SessionSettings",
    "Summary",
    "UserError",
]

_LAZY = {
    "AgentInfo": "loomkin.service",
    "Budgets": "loomkin.agents",
    "Event": "loomkin.core.events",
    "Loomkin": "loomkin.service",
    "RecordedEvent": "loomkin.core.events",
    "Role": "loomkin.agents",
    "Session": "loomkin.service",
    "SessionSettings": "loomkin.agents",
    "Summary": "loomkin.service",
}
"""Public name → the module it is imported from on first use."""


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loomkin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
