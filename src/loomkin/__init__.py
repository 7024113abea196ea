"""Loomkin: self-organizing teams of LLM coding agents you can pause, inspect and steer.

The public API is small: open a :class:`Loomkin` runtime on an event store, open a
:class:`Session` on a project, send it goals, subscribe to its events, and control its
agents. Everything the CLI and the web app do goes through it.
"""

from loomkin.agents import Budgets, Role, SessionSettings
from loomkin.core.events import Event, RecordedEvent
from loomkin.errors import LoomkinError, UserError
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
