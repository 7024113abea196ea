from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.errors import UserError
from loomkin.tools.permissions import PermissionGrant, PermissionPolicy, validate_rule

if TYPE_CHECKING:
    from loomkin.core.records import ToolCategory


@pytest.mark.parametrize("category", ["read", "coordination"])
def test_read_and_coordination_are_allowed(category: ToolCategory) -> None:
    assert PermissionPolicy().decide("any_tool", category, "/p/x") == "allow"


@pytest.mark.parametrize(("tool", "category"), [("file_write", "write"), ("shell", "execute")])
def test_write_and_execute_ask_by_default(tool: str, category: ToolCategory) -> None:
    assert PermissionPolicy().decide(tool, category, "/p/x") == "ask"


def test_auto_approve_by_name_category_and_star() -> None:
    by_name = PermissionPolicy(auto_approve=frozenset({"file_edit"}))
    assert by_name.decide("file_edit", "write", "/p/a") == "allow"
    assert by_name.decide("file_write", "write", "/p/a") == "ask"
    by_category = PermissionPolicy(auto_approve=frozenset({"category:write"}))
    assert by_category.decide("file_write", "write", "/p/a") == "allow"
    assert by_category.decide("shell", "execute", "ls") == "ask"
    everything = PermissionPolicy(auto_approve=frozenset({"*"}))
    assert everything.decide("shell", "execute", "ls") == "allow"


def test_deny_wins_over_everything() -> None:
    policy = PermissionPolicy(
        auto_approve=frozenset({"*"}), deny=frozenset({"shell", "category:read"})
    )
    policy.grant_always("shell", "*")
    assert policy.decide("shell", "execute", "ls") == "deny"
    assert policy.decide("file_read", "read", "/p/a") == "deny"
    assert policy.decide("git", "execute", "git status") == "allow"


def test_grant_exact_target() -> None:
    policy = PermissionPolicy()
    grant = policy.grant_always("file_write", "/p/src/a.py")
    assert grant == PermissionGrant(tool="file_write", target="/p/src/a.py")
    assert policy.decide("file_write", "write", "/p/src/a.py") == "allow"
    assert policy.decide("file_write", "write", "/p/src/b.py") == "ask"
    assert policy.decide("file_edit", "write", "/p/src/a.py") == "ask"


def test_grant_directory_prefix() -> None:
    policy = PermissionPolicy()
    policy.grant_always("file_write", "/p/src")
    assert policy.decide("file_write", "write", "/p/src/a.py") == "allow"
    assert policy.decide("file_write", "write", "/p/src/deep/b.py") == "allow"
    assert policy.decide("file_write", "write", "/p/srcx/a.py") == "ask"
    assert policy.decide("file_write", "write", "/p/other.py") == "ask"
    policy.grant_always("file_edit", "/p/lib/")
    assert policy.decide("file_edit", "write", "/p/lib/a.py") == "allow"


def test_command_grants_are_exact() -> None:
    policy = PermissionPolicy()
    policy.grant_always("shell", "pytest -q")
    assert policy.decide("shell", "execute", "pytest -q") == "allow"
    assert policy.decide("shell", "execute", "pytest -q; rm -rf x") == "ask"


def test_star_grant_and_empty_target() -> None:
    policy = PermissionPolicy()
    assert policy.grant_always("git", "") == PermissionGrant(tool="git", target="*")
    assert policy.decide("git", "execute", "git commit -m x") == "allow"
    assert policy.decide("shell", "execute", "ls") == "ask"


def test_grants_are_kept_in_order_without_duplicates_and_rebuildable() -> None:
    policy = PermissionPolicy()
    first = policy.grant_always("shell", "ls")
    second = policy.grant_always("file_write", "/p")
    policy.grant_always("shell", "ls")
    assert policy.grants == (first, second)
    rebuilt = PermissionPolicy(grants=policy.grants)
    assert rebuilt.decide("file_write", "write", "/p/x") == "allow"
    rebuilt.revoke(second)
    rebuilt.revoke(second)
    assert rebuilt.decide("file_write", "write", "/p/x") == "ask"


def test_shared_policy_applies_to_every_agent() -> None:
    shared = PermissionPolicy()
    agents = {"coder": shared, "spawned-tester": shared}
    agents["coder"].grant_always("shell", "pytest")
    assert agents["spawned-tester"].decide("shell", "execute", "pytest") == "allow"


def test_invalid_entries() -> None:
    with pytest.raises(UserError, match="unknown tool category 'writes' in 'category:writes'"):
        PermissionPolicy(auto_approve=frozenset({"category:writes"}))
    with pytest.raises(UserError, match="cannot be empty"):
        PermissionPolicy(deny=frozenset({" "}))
    assert validate_rule("category:execute") == "category:execute"


def test_properties_and_repr() -> None:
    policy = PermissionPolicy(auto_approve=frozenset({"git"}), deny=frozenset({"shell"}))
    assert policy.auto_approve == frozenset({"git"})
    assert policy.deny == frozenset({"shell"})
    assert repr(policy) == "PermissionPolicy(auto_approve=['git'], deny=['shell'], grants=0)"
