"""Roles: what each kind of agent is for, what it is told, and which tools it may call.

A role's prompt may only tell the agent to use tools that are in the role's tool set (a test
checks every built-in role). Every coordination tool is in the tool set of the roles that need
it: the Elixir version registered coordination tools that no role could call.

A role's ``core`` tools are the ones it uses often: only their schemas go out with every
request; the others are listed by name and shown by ``load_tools`` on demand
(:mod:`loomkin.agents.toolsets`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.agents.guidelines import shared_guidelines

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BUILTIN_ROLES",
    "COORDINATION_TOOLS",
    "EXEC_TOOLS",
    "READ_TOOLS",
    "WRITE_TOOLS",
    "Role",
    "custom_role",
    "resolve_role",
    "with_tools",
]

READ_TOOLS = ("file_read", "file_search", "content_search", "directory_list")
WRITE_TOOLS = ("file_write", "file_edit", "claim_region")
EXEC_TOOLS = ("shell", "git")
PEER_TOOLS = (
    "peer_message",
    "broadcast",
    "follow_topic",
    "ask_question",
    "forward_question",
    "answer_question",
    "share_insight",
    "list_teams",
    "decision_log",
    "decision_query",
    "propose_vote",
    "cast_vote",
    "knowledge_query",
    "signal_ready",
    "subscribe_ready",
    "rendezvous_arrive",
    "rendezvous_join",
)
WORKER_TASK_TOOLS = (
    "task_list",
    "task_read",
    "task_create",
    "task_update",
    "task_complete",
    "add_dependency",
    "emit_milestone",
    "publish_partial",
    "speculate",
    "assumption_add",
    "task_accept",
    "task_decline",
    "task_counter",
    "task_claim",
)
LEAD_TOOLS = (
    "team_spawn",
    "team_assign",
    "team_smart_assign",
    "team_progress",
    "team_dissolve",
    "resolve_vote",
    "abort_task",
    "speculation_cancel",
    "negotiation_resolve",
    "task_review",
    "rendezvous_create",
    "team_scale",
)
COORDINATION_TOOLS = PEER_TOOLS + WORKER_TASK_TOOLS + LEAD_TOOLS
LOAD_TOOLS = "load_tools"
"""Shows the schemas of a role's tools that are not core (every role has it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Role:
    """A role an agent can have."""

    name: str
    description: str
    """One line: what the role is for (used by smart assignment and team_spawn)."""
    prompt: str
    """The role-specific part of the system prompt."""
    tools: tuple[str, ...]
    """Names of the tools the role may call."""
    core: tuple[str, ...] | None = None
    """The tools whose schemas every request carries (``None``: as many as fit the budget,
    in order); the role's other tools are callable after ``load_tools``."""

    def system_prompt(self, *, agent_name: str, team_name: str, project: str) -> str:
        """Return the full system prompt of an agent with this role."""
        return (
            f"You are {agent_name}, the {self.name} of team {team_name!r} in Loomkin, working "
            f"on the project at {project}.\n\n{self.prompt.strip()}\n\n"
            f"{shared_guidelines(self.tools)}"
        )


_CONCIERGE = """
You are the user's host. Understand what the user wants, then get it done by others:
create tasks with task_create (with dependencies between them), spawn a team of specialists
with team_spawn, and hand work out with team_assign. Do not do the work yourself. The Orienter
sends you a brief about the project; use it. Keep the user informed in short, plain replies,
and summarise the results when the work is done (team_progress shows where things stand).
"""

_ORIENTER = """
You scan the project silently when the session starts and brief the Concierge. Look at the
tree (directory_list, file_search), the README, AGENTS and CONTRIBUTING files (file_read),
recent history (git with operation "log") and open decisions (decision_query). Then send one
structured brief to the agent named "concierge" with peer_message, with these sections:
Active goals, Recent activity, Coverage gaps, Prior context, Hypotheses. Then signal that the
brief is out with signal_ready (name "briefed"): the Concierge waits for it. Then stop.
"""

_LEAD = """
You lead a team. Break the goal into tasks with clear acceptance criteria and file paths
(task_create, add_dependency), hand them out (team_assign, team_smart_assign), watch progress
(team_progress), relay context between agents (peer_message), unblock them, and synthesise
the results. The team grows and shrinks with its backlog; pin or bound its size with
team_scale when you know better. Spawn a sub-team with team_spawn only when a part of the
work is large and separable; dissolve it with team_dissolve when its work is done.
"""

_RESEARCHER = """
You explore and explain; you do not edit files. Find the relevant code (file_search,
content_search, file_read), cite file:line, separate facts from inferences, and record what
matters with decision_log. Report findings with task_complete, or to whoever asked.
"""

_CODER = """
You implement. Read the code you will change (file_read), make minimal focused edits
(file_edit, file_write), and verify them (shell to run the tests). Do not over-engineer.
Commit only when asked (git). If you depend on another task's output, read it (task_read).
Publish large outputs progressively with publish_partial when others consume them.
"""

_REVIEWER = """
You review changes for correctness, security and edge cases. Read the diff (git with
operation "diff") and the code (file_read), run checks (shell) when useful, and report
findings by severity with concrete, actionable suggestions (peer_message to the author, then
task_complete with the review).
"""

_TESTER = """
You run and write tests. Run the suite (shell), report exact failures with paths and lines,
add missing tests (file_write, file_edit), and finish with task_complete giving counts of
passed and failed tests.
"""


def _role(
    name: str, description: str, prompt: str, core: tuple[str, ...], *groups: tuple[str, ...]
) -> Role:
    tools: list[str] = []
    for group in (*groups, (LOAD_TOOLS,)):
        tools.extend(t for t in group if t not in tools)
    return Role(name=name, description=description, prompt=prompt, tools=tuple(tools), core=core)


# The tools each role calls often (the demo and the scripted scenarios show which).
_WORKER_CORE = ("task_read", "task_complete", "peer_message", "answer_question")


_ALL = READ_TOOLS + WRITE_TOOLS + EXEC_TOOLS + COORDINATION_TOOLS

BUILTIN_ROLES: Mapping[str, Role] = {
    r.name: r
    for r in (
        _role(
            "concierge",
            "user-facing host who routes work",
            _CONCIERGE,
            (
                "file_read",
                "directory_list",
                "task_create",
                "task_list",
                "team_spawn",
                "team_assign",
                "team_progress",
                "peer_message",
            ),
            READ_TOOLS,
            _ALL,
        ),
        _role(
            "orienter",
            "scans the project at session start",
            _ORIENTER,
            (*READ_TOOLS, "git", "decision_query", "peer_message"),
            READ_TOOLS,
            ("git",),
            PEER_TOOLS,
        ),
        _role(
            "lead",
            "plans, delegates and integrates",
            _LEAD,
            (
                "file_read",
                "task_create",
                "add_dependency",
                "task_list",
                "team_assign",
                "team_smart_assign",
                "team_progress",
                "team_spawn",
                "team_dissolve",
                "peer_message",
            ),
            _ALL,
        ),
        _role(
            "researcher",
            "reads and explains code",
            _RESEARCHER,
            (*READ_TOOLS, *_WORKER_CORE, "decision_log"),
            READ_TOOLS,
            PEER_TOOLS,
            WORKER_TASK_TOOLS,
        ),
        _role(
            "coder",
            "implements changes",
            _CODER,
            (*READ_TOOLS, "file_write", "file_edit", "shell", *_WORKER_CORE, "emit_milestone"),
            READ_TOOLS,
            WRITE_TOOLS,
            EXEC_TOOLS,
            PEER_TOOLS,
            WORKER_TASK_TOOLS,
        ),
        _role(
            "reviewer",
            "reviews changes",
            _REVIEWER,
            (*READ_TOOLS, *EXEC_TOOLS, *_WORKER_CORE),
            READ_TOOLS,
            EXEC_TOOLS,
            PEER_TOOLS,
            WORKER_TASK_TOOLS,
            ("task_review",),
        ),
        _role(
            "tester",
            "runs and writes tests",
            _TESTER,
            (*READ_TOOLS, "file_write", "file_edit", "shell", *_WORKER_CORE),
            READ_TOOLS,
            WRITE_TOOLS,
            ("shell",),
            PEER_TOOLS,
            WORKER_TASK_TOOLS,
        ),
    )
}

# Words in a free-form role description that map it to a built-in role (checked in order).
_ROLE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reviewer", ("review", "audit")),
    ("tester", ("test", "qa", "verif")),
    ("researcher", ("research", "analy", "explor", "investigat", "document")),
    ("lead", ("lead", "coordinat", "manag", "architect")),
    ("coder", ("code", "implement", "develop", "engineer", "program", "fix", "build")),
)


def custom_role(name: str, *, prompt: str, tools: tuple[str, ...], description: str = "") -> Role:
    """Build a role from ``loomkin.toml`` (``[roles.<name>]``).

    Its tools go out whole while they fit the schema budget; the tool set always has
    ``load_tools`` (:func:`~loomkin.agents.tools.toolset_for`), so any that do not fit stay
    callable.
    """
    return Role(name=name, description=description or name, prompt=prompt, tools=tools)


def with_tools(role: Role, extra: tuple[str, ...]) -> Role:
    """``role`` with ``extra`` tool entries (``"mcp:NAME"``) added after its own."""
    tools = role.tools + tuple(t for t in extra if t not in role.tools)
    return dataclasses.replace(role, tools=tools)


def resolve_role(name_or_description: str, custom: Mapping[str, Role] | None = None) -> Role:
    """Find a role by name, or map a free-form description to the closest built-in role.

    Unknown descriptions become a coder-like role named after the description, so a spawn
    asking for "database migration specialist" gets a working agent rather than an error.
    """
    key = name_or_description.strip().lower()
    # A custom role may reuse a built-in name (a built-in role given an MCP server's tools
    # becomes one): descriptions that map to that built-in role get the custom one too.
    roles = {**BUILTIN_ROLES, **(custom or {})}
    if key in roles:
        return roles[key]
    for role_name, words in _ROLE_WORDS:
        if any(w in key for w in words):
            return roles[role_name]
    base = roles["coder"]
    slug = re.sub(r"[^a-z0-9]+", "-", key).strip("-") or "specialist"
    return Role(
        name=slug,
        description=name_or_description,
        prompt=f"You are a specialist: {name_or_description}.\n{base.prompt}",
        tools=base.tools,
        core=base.core,
    )
