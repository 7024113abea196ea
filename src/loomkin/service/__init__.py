"""The public runtime: open a store, open sessions, talk to and control agents."""

from loomkin.core.store import CheckReport
from loomkin.service.budgets import BUDGET_KEYS, BudgetUpdate
from loomkin.service.mcp import probe_mcp_servers
from loomkin.service.negotiations import NegotiationInfo
from loomkin.service.previews import PermissionPreview
from loomkin.service.questions import QuestionResponder, UserQuestion, answer_user_questions
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
from loomkin.service.rendezvous import RendezvousInfo
from loomkin.service.runtime import Loomkin, ModelFactory, ModelWrapper
from loomkin.service.scaling import TeamScaleInfo
from loomkin.service.session import Session
from loomkin.service.speculation import SpeculationInfo, SpeculationSummary
from loomkin.service.spend import AgentSpend, Spend, TeamSpend
from loomkin.service.stores import check_store
from loomkin.service.tracing import LiveTrace, export_trace, live_trace

__all__ = [
    "BUDGET_KEYS",
    "AgentInfo",
    "AgentSnapshot",
    "AgentSpend",
    "BudgetStatus",
    "BudgetUpdate",
    "CheckReport",
    "DependencyInfo",
    "EventStream",
    "LiveTrace",
    "Loomkin",
    "McpServerInfo",
    "McpToolInfo",
    "ModelFactory",
    "ModelWrapper",
    "Names",
    "NegotiationInfo",
    "PendingPermission",
    "PermissionPreview",
    "PermissionResponder",
    "QuestionResponder",
    "RendezvousInfo",
    "Session",
    "SpeculationInfo",
    "SpeculationSummary",
    "Spend",
    "StoredSession",
    "Summary",
    "TaskInfo",
    "TeamInfo",
    "TeamScaleInfo",
    "TeamSpend",
    "UserQuestion",
    "answer_user_questions",
    "check_store",
    "export_trace",
    "live_trace",
    "probe_mcp_servers",
]
