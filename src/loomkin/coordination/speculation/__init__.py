"""Speculative execution (SPEC §3.7): tasks started ahead of their blockers, in isolation.

``workspace`` makes the isolated copies (git worktrees or overlays), ``state`` folds the
speculation events, ``service`` starts, validates, merges and discards, ``idle`` decides
what idle agents speculate on, pricing bets with the critical-path ``forecast``.
"""

from loomkin.coordination.speculation.service import Speculation
from loomkin.coordination.speculation.verify import AssumptionSpec, Judge, Judgement
from loomkin.coordination.speculation.workspace import (
    WORKTREES,
    MergeResult,
    Workspace,
    WorkspaceError,
    Workspaces,
)

__all__ = [
    "WORKTREES",
    "AssumptionSpec",
    "Judge",
    "Judgement",
    "MergeResult",
    "Speculation",
    "Workspace",
    "WorkspaceError",
    "Workspaces",
]
