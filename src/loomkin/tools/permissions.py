"""The permission policy: which tool calls run at once, which ask, which are refused.

How this works and why: the policy is pure (no I/O, no clock) so the agent loop can consult it
at any checkpoint and a replay rebuilds it exactly. One policy object is shared by every agent
of a session, spawned agents included, so an "allow always" answer given to one agent holds
for all of them. Grants are plain :class:`PermissionGrant` values: the session journals each
one as an event (``PermissionResolved`` with ``allow_always``) and rebuilds the policy by
calling :meth:`PermissionPolicy.grant_always` again while replaying.

Order of decision: a ``deny`` entry wins over everything; then read and coordination tools
are allowed; then ``auto_approve`` entries and grants allow; anything else asks.
Entries name a tool (``"shell"``), a category (``"category:write"``), the tools of an MCP
server (``"mcp:github"``) or one of them (``"mcp:github.create_issue"``), or everything
(``"*"``). MCP tools are in the ``execute`` category.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal, get_args

from loomkin.core.records import ToolCategory
from loomkin.errors import UserError

__all__ = [
    "CATEGORIES",
    "PermissionGrant",
    "PermissionOutcome",
    "PermissionPolicy",
    "validate_rule",
]

PermissionOutcome = Literal["allow", "ask", "deny"]
"""What :meth:`PermissionPolicy.decide` says about one call."""

CATEGORIES: tuple[ToolCategory, ...] = get_args(ToolCategory)
"""The tool categories a ``category:<name>`` entry may name."""
_ALWAYS_ALLOWED: frozenset[ToolCategory] = frozenset({"read", "coordination"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionGrant:
    """An "allow always" answer: ``tool`` may act on ``target`` without asking again."""

    tool: str
    """The tool name the grant is for."""
    target: str
    """``"*"`` for every target, an exact target (a path or a command), or a directory path
    (an absolute path, which then also covers everything below it)."""

    def covers(self, tool_name: str, target: str) -> bool:
        """Return True when this grant allows ``tool_name`` on ``target``."""
        if tool_name != self.tool:
            return False
        if self.target in {"*", target}:
            return True
        base = self.target.rstrip("/")
        return self.target.startswith("/") and target.startswith(base + "/")


def validate_rule(rule: str) -> str:
    """Check one ``auto_approve``/``deny`` entry and return it.

    Args:
        rule: A tool name, ``"category:<read|write|execute|coordination>"`` or ``"*"``.

    Raises:
        UserError: the entry is empty or names an unknown category.
    """
    if not rule.strip():
        raise UserError("permission entries cannot be empty")
    if rule.startswith("category:"):
        category = rule.removeprefix("category:")
        if category not in CATEGORIES:
            close = difflib.get_close_matches(category, CATEGORIES, n=1)
            hint = f" (did you mean 'category:{close[0]}'?)" if close else ""
            raise UserError(
                f"unknown tool category {category!r} in {rule!r}{hint}; "
                f"expected one of {', '.join(CATEGORIES)}"
            )
    return rule


def _matches(rules: frozenset[str], tool_name: str, category: ToolCategory) -> bool:
    if "*" in rules or tool_name in rules or f"category:{category}" in rules:
        return True
    # MCP tools are "SERVER.tool": "mcp:SERVER" covers all of them, "mcp:SERVER.tool" one.
    server, dot, _ = tool_name.partition(".")
    return bool(dot) and (f"mcp:{server}" in rules or f"mcp:{tool_name}" in rules)


class PermissionPolicy:
    """Decides whether a tool call runs, asks the user first, or is refused.

    Args:
        auto_approve: Entries allowed without asking (tool names, ``category:<c>``, ``*``).
        deny: Entries always refused (same forms); deny wins over everything.
        grants: Grants to start from (for example rebuilt from the journal).

    Raises:
        UserError: an entry names an unknown category.
    """

    __slots__ = ("_auto_approve", "_deny", "_grants")

    def __init__(
        self,
        *,
        auto_approve: frozenset[str] = frozenset(),
        deny: frozenset[str] = frozenset(),
        grants: tuple[PermissionGrant, ...] = (),
    ) -> None:
        self._auto_approve = frozenset(validate_rule(r) for r in auto_approve)
        self._deny = frozenset(validate_rule(r) for r in deny)
        self._grants: dict[PermissionGrant, None] = dict.fromkeys(grants)

    @property
    def auto_approve(self) -> frozenset[str]:
        """Entries allowed without asking."""
        return self._auto_approve

    @property
    def deny(self) -> frozenset[str]:
        """Entries always refused."""
        return self._deny

    @property
    def grants(self) -> tuple[PermissionGrant, ...]:
        """The "allow always" grants, oldest first."""
        return tuple(self._grants)

    def decide(self, tool_name: str, category: ToolCategory, target: str) -> PermissionOutcome:
        """Return ``allow``, ``ask`` or ``deny`` for one tool call.

        Args:
            tool_name: The tool's name.
            category: The tool's category.
            target: The resolved path or command the call acts on ("" when none).
        """
        if _matches(self._deny, tool_name, category):
            return "deny"
        if category in _ALWAYS_ALLOWED or _matches(self._auto_approve, tool_name, category):
            return "allow"
        if any(grant.covers(tool_name, target) for grant in self._grants):
            return "allow"
        return "ask"

    def grant_always(self, tool_name: str, target: str) -> PermissionGrant:
        """Record an "allow always" answer and return the grant (journal it as an event).

        Args:
            tool_name: The tool the user allowed.
            target: The exact target, a directory path, or ``"*"`` (an empty target, for a
                tool without one, is stored as ``"*"``).
        """
        grant = PermissionGrant(tool=tool_name, target=target or "*")
        self._grants[grant] = None
        return grant

    def revoke(self, grant: PermissionGrant) -> None:
        """Forget a grant (no error if it was not there)."""
        self._grants.pop(grant, None)

    def __repr__(self) -> str:
        return (
            f"PermissionPolicy(auto_approve={sorted(self._auto_approve)!r}, "
            f"deny={sorted(self._deny)!r}, grants={len(self._grants)})"
        )
