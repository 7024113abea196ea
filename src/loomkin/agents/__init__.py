"""Coding agents on the actor runtime: the loop, checkpoints, roles, tools and sessions.

How a user's message reaches the model (each step a module of this package):
``Session.send`` (service) → :func:`~loomkin.agents.bootstrap.post_user_message` appends a
``MessageSent`` → the log feeds the session's projections; the
:class:`~loomkin.agents.router.MessageRouter` publishes it to the agent's mailbox → the mailbox
wakes the :class:`~loomkin.agents.agent.Agent`, whose
:class:`~loomkin.agents.activation.Activator` runs :func:`~loomkin.agents.activation.activation`
→ :func:`~loomkin.agents.loop.run_loop` → ``call_model_step`` folds the message in
(:func:`~loomkin.agents.inbox.ingest_messages`) → :func:`~loomkin.agents.loop.call_model`
builds the request and streams the model's answer.
"""

from loomkin.agents.agent import Agent, AgentSnapshot
from loomkin.agents.budgets import Budgets
from loomkin.agents.context import AgentContext
from loomkin.agents.control import ControlCommand, ControlLane
from loomkin.agents.desk import PermissionPrompt, PermissionResponder
from loomkin.agents.roles import BUILTIN_ROLES, Role, custom_role, resolve_role
from loomkin.agents.session import SessionRuntime
from loomkin.agents.settings import SessionSettings

__all__ = [
    "BUILTIN_ROLES",
    "Agent",
    "AgentContext",
    "AgentSnapshot",
    "Budgets",
    "ControlCommand",
    "ControlLane",
    "PermissionPrompt",
    "PermissionResponder",
    "Role",
    "SessionRuntime",
    "SessionSettings",
    "custom_role",
    "resolve_role",
]
