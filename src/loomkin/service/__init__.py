"""The public runtime: open a store, open sessions, talk to and control agents."""

from loomkin.core.store import CheckReport
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
from loomkin.service.stores import check_store

__all__ = [
    "AgentInfo",
    "AgentSnapshot",
    "BudgetStatus",
    "CheckReport",
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
    "check_store",
]
