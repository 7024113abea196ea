"""Issue #3: role prompts mention only their own tools; every coordination tool is reachable."""

from __future__ import annotations

import re

import pytest

from loomkin.agents.roles import BUILTIN_ROLES, Role, custom_role, resolve_role
from loomkin.agents.tools import CATALOGUE, COORDINATION_TOOLS, toolset_for

TOOL_NAMES = frozenset(CATALOGUE.names())
IDENTIFIER = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def mentioned_tools(text: str) -> set[str]:
    """Catalogue tool names a prompt mentions (also the single-word ones, like ``git``)."""
    words = set(re.findall(r"\b[a-z][a-z0-9_]*\b", text))
    return words & TOOL_NAMES


def prompt_of(role: Role) -> str:
    return role.system_prompt(agent_name="someone", team_name="root", project="/project")


@pytest.mark.parametrize("role", BUILTIN_ROLES.values(), ids=list(BUILTIN_ROLES))
def test_prompt_only_mentions_tools_in_the_roles_tool_set(role: Role) -> None:
    prompt = prompt_of(role)
    missing = mentioned_tools(prompt) - set(role.tools)
    assert not missing, f"{role.name}'s prompt mentions tools it cannot call: {sorted(missing)}"


@pytest.mark.parametrize("role", BUILTIN_ROLES.values(), ids=list(BUILTIN_ROLES))
def test_prompt_names_no_unknown_tool_like_identifiers(role: Role) -> None:
    # snake_case words in a prompt are tool names; a typo would name a tool that does not exist
    unknown = set(IDENTIFIER.findall(prompt_of(role))) - TOOL_NAMES
    assert not unknown, f"{role.name}'s prompt names unknown tools {sorted(unknown)}"


@pytest.mark.parametrize("role", BUILTIN_ROLES.values(), ids=list(BUILTIN_ROLES))
def test_every_tool_of_a_role_exists(role: Role) -> None:
    assert set(role.tools) <= TOOL_NAMES
    assert set(toolset_for(role).names()) == set(role.tools)


def test_every_coordination_tool_is_in_some_roles_tool_set() -> None:
    reachable = {name for role in BUILTIN_ROLES.values() for name in role.tools}
    unreachable = {t.name for t in COORDINATION_TOOLS} - reachable
    assert not unreachable, f"coordination tools no role can call: {sorted(unreachable)}"


def test_worker_roles_can_complete_their_tasks() -> None:
    for name in ("researcher", "coder", "reviewer", "tester", "lead"):
        assert "task_complete" in BUILTIN_ROLES[name].tools, name


def test_the_orienter_is_not_told_to_complete_tasks() -> None:
    prompt = prompt_of(BUILTIN_ROLES["orienter"])
    assert "task_complete" not in prompt
    assert "peer_message" in prompt


def test_custom_and_generated_roles_follow_the_same_rule() -> None:
    minimal = custom_role("scribe", prompt="Write notes with file_write.", tools=("file_write",))
    assert mentioned_tools(prompt_of(minimal)) <= {"file_write"}
    generated = resolve_role("database migration specialist")
    assert mentioned_tools(prompt_of(generated)) <= set(generated.tools)
