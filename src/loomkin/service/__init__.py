"""The public runtime: open a store, open sessions, talk to and control agents."""

from loomkin.service.records import (
    AgentInfo,
    AgentSnapshot,
    BudgetStatus,
    DependencyInfo,
    EventStream,
    Names,
    PendingPermission,
    PermissionResponder,
    StoredSession,
    Summary,
    TaskInfo,
    TeamInfo,
)
from loomkin.service.runtime import Loomkin, ModelFactory
from loomkin.service.session import Session

__all__ = [
    "AgentInfo",
    "AgentSnapshot",
    "BudgetStatus",
    "DependencyInfo",
    "EventStream",
    "Loomkin",
    "ModelFactory",
    "Names",
    "PendingPermission",
    "PermissionResponder",
    "Session",
    "StoredSession",
    "Summary",
    "TaskInfo",
    "TeamInfo",
]
