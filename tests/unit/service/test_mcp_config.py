"""``[mcp.servers.NAME]`` in loomkin.toml: validated, turned into specs, roles and permissions."""

from __future__ import annotations

import pytest

from loomkin.agents.roles import BUILTIN_ROLES, resolve_role
from loomkin.agents.tools import toolset_for
from loomkin.errors import ConfigError
from loomkin.service.config import parse_config
from loomkin.service.options import session_options
from loomkin.tools.mcp import HttpTransport, McpNames, StdioTransport

FULL = """
[mcp.servers.git]
command = "uvx"
args = ["mcp-server-git", "--repository", "."]
env = { GIT_TOKEN = "${LOOMKIN_TEST_GIT_TOKEN}", PLAIN = "x" }
cwd = "sub"
roles = ["coder", "docs"]
permission = "allow"
timeout_s = 10.0

[mcp.servers.issues]
url = "https://issues.example.invalid/mcp"
headers = { Authorization = "Bearer ${LOOMKIN_TEST_ISSUES_TOKEN}" }
permission = "deny"

[mcp.servers.search]
url = "http://127.0.0.1:8000/mcp"

[roles.docs]
prompt = "You write documentation."
tools = ["file_read", "file_write"]

[roles.triager]
prompt = "You triage issues."
tools = ["file_read", "mcp:issues", "mcp:search"]
"""


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOMKIN_TEST_GIT_TOKEN", "g1t")
    monkeypatch.setenv("LOOMKIN_TEST_ISSUES_TOKEN", "1ss")


@pytest.mark.usefixtures("tokens")
def test_servers_become_specs_with_variables_read_from_the_environment() -> None:
    options = session_options(parse_config(FULL))
    git, issues, search = options.settings.mcp_servers
    assert git.transport == StdioTransport(
        command="uvx",
        args=("mcp-server-git", "--repository", "."),
        env=(("GIT_TOKEN", "g1t"), ("PLAIN", "x")),
        cwd="sub",
    )
    assert (git.permission, git.roles, git.call_timeout_s) == ("allow", ("coder", "docs"), 10.0)
    assert issues.transport == HttpTransport(
        url="https://issues.example.invalid/mcp", headers=(("Authorization", "Bearer 1ss"),)
    )
    assert issues.transport.describe() == "https://issues.example.invalid/mcp"  # no token shown
    assert (search.permission, search.kind) == ("ask", "http")


@pytest.mark.usefixtures("tokens")
def test_permissions_and_role_opt_in() -> None:
    options = session_options(parse_config(FULL))
    policy = options.policy
    assert policy.decide("git.git_commit", "execute", "") == "allow"
    assert policy.decide("issues.close", "execute", "") == "deny"
    assert policy.decide("search.find", "execute", "") == "ask"
    roles = options.settings.custom_roles
    # A built-in role named by a server becomes a custom role with the server's tools.
    assert roles["coder"].tools == (*BUILTIN_ROLES["coder"].tools, "mcp:git")
    assert roles["coder"].prompt == BUILTIN_ROLES["coder"].prompt
    assert roles["docs"].tools == ("file_read", "file_write", "mcp:git")
    assert roles["triager"].tools == ("file_read", "mcp:issues", "mcp:search")
    # A description that maps to the coder role gets the opted-in coder too.
    assert "mcp:git" in resolve_role("implement the parser", roles).tools
    assert "mcp:git" not in resolve_role("reviewer", roles).tools


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[mcp.servers.a]\nurl = "http://x/mcp"\ncommand = "y"', "give either 'command'"),
        ("[mcp.servers.a]\npermission = 'ask'", "give either 'command'"),
        ('[mcp.servers.a]\nurl = "file:///x"', "'url' must be an http(s) URL"),
        ('[mcp.servers.a]\nurl = "http://x/mcp"\nenv = {A = "1"}', "'env' only go with"),
        ('[mcp.servers.a]\ncommand = "x"\nheaders = {A = "1"}', "'headers' only go with 'url'"),
        ('[mcp.servers."a.b"]\ncommand = "x"', "must be lower-case letters"),
        ('[mcp.servers.a]\ncommand = "x"\npermision = "allow"', "did you mean 'permission'"),
        ('[mcp.servers.a]\ncommand = "x"\npermission = "maybe"', "'allow', 'ask' or 'deny'"),
        ('[mcp.servers.a]\ncommand = "x"\ntimeout_s = 0', "greater than 0"),
        ("[mcp]\nserver = {}", "did you mean 'servers'"),
    ],
)
def test_bad_server_entries_are_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        session_options(parse_config(text))
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[mcp.servers.a]\ncommand = "x"\nroles = ["wizard"]',
            "mcp.servers.a.roles: unknown role 'wizard'",
        ),
        (
            '[roles.r]\nprompt = "p"\ntools = ["mcp:nope"]',
            "role 'r' lists mcp:nope, but no such MCP server is configured",
        ),
        (
            '[mcp.servers.a]\ncommand = "x"\nenv = {T = "${LOOMKIN_TEST_UNSET_VARIABLE}"}',
            "mcp.servers.a.env.T: the variable LOOMKIN_TEST_UNSET_VARIABLE is not set",
        ),
    ],
)
def test_bad_references_are_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        session_options(parse_config(text))
    assert problem in str(refused.value)


def test_a_role_gets_its_servers_tools_after_its_own() -> None:
    role = resolve_role(
        "triager", session_options(parse_config(FULL_NO_VARS)).settings.custom_roles
    )
    tools = toolset_for(role, McpNames(["issues", "search"]))
    # declared servers have no tools before they run; load_tools shows any a request lacks
    assert tools.names() == ("file_read", "load_tools")
    with pytest.raises(ConfigError, match="configured: none"):
        toolset_for(role)


FULL_NO_VARS = """
[mcp.servers.issues]
url = "http://127.0.0.1:1/mcp"
[mcp.servers.search]
url = "http://127.0.0.1:2/mcp"
[roles.triager]
prompt = "You triage issues."
tools = ["file_read", "mcp:issues", "mcp:search"]
"""
