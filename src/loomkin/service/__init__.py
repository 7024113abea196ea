"""The public runtime: open a store, open sessions, talk to and control agents."""

from loomkin.core.store import CheckReport
from loomkin.service.mcp import probe_mcp_servers
from loomkin.service.records import (
    AgentInfo,
    AgentSnapshot,
    BudgetStatus,
    DependencyInfo,
    EventStream,
    McpServerInfo,
    McpToolInfo,
    Names,
    PendingPermission,
    PermissionResponder,
    StoredSession,
    Summary,
    TaskInfo,
    TeamInfo,
)
from loomkin.service.runtime import Loomkin, ModelFactory
from loomkin.service.scaling import TeamScaleInfo
from loomkin.service.session import Session
from loomkin.service.spend import AgentSpend, Spend, TeamSpend
from loomkin.service.stores import check_store
from loomkin.service.tracing import LiveTrace, export_trace, live_trace

__all__ = [
    "AgentInfo",
    "AgentSnapshot",
    "AgentSpend",
    "BudgetStatus",
    "CheckReport",
    "DependencyInfo",
    "EventStream",
    "LiveTrace",
    "Loomkin",
    "McpServerInfo",
    "McpToolInfo",
    "ModelFactory",
    "Names",
    "PendingPermission",
    "PermissionResponder",
    "Session",
    "Spend",
    "StoredSession",
    "Summary",
    "TaskInfo",
    "TeamInfo",
    "TeamScaleInfo",
    "TeamSpend",
    "check_store",
    "export_trace",
    "live_trace",
    "probe_mcp_servers",
]
