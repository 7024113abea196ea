"""Coding agents on the actor runtime: the loop, checkpoints, roles, tools and sessions."""

from loomkin.agents.agent import Agent
from loomkin.agents.control import ControlCommand, ControlLane
from loomkin.agents.roles import BUILTIN_ROLES, Role, custom_role, resolve_role
from loomkin.agents.session import Budgets, SessionRuntime, SessionSettings

__all__ = [
    "BUILTIN_ROLES",
    "Agent",
    "Budgets",
    "ControlCommand",
    "ControlLane",
    "Role",
    "SessionRuntime",
    "SessionSettings",
    "custom_role",
    "resolve_role",
]
