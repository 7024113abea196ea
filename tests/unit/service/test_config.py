from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ConfigError
from loomkin.service.config import CONFIG_FILE, LoomkinConfig, load_config, parse_config
from loomkin.service.options import session_options

if TYPE_CHECKING:
    from pathlib import Path


def write(root: Path, text: str) -> Path:
    path = root / CONFIG_FILE
    path.write_text(text)
    return path


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == LoomkinConfig()
    assert config.limits.max_iterations == 30
    assert config.limits.max_team_depth == 3
    assert config.limits.max_agents_per_team == 8
    assert config.rebalancer.stuck_after_s == 300
    assert config.rebalancer.check_every_s == 60
    assert config.comms.policy == "neighbours"
    assert config.shell.timeout_s == 30
    assert config.shell.network is False


FULL = """
[model]
default = "anthropic:claude-sonnet-4-5"
base_url = "http://127.0.0.1:8080/v1"

[permissions]
auto_approve = ["file_edit", "category:write"]
deny = ["shell"]

[shell]
allow = ["pytest", "ls"]
deny = ["git push"]
timeout_s = 45
network = true

[budgets]
session_usd = 5.0
team_usd = 2
agent_usd = 0.5
session_tokens = 1000000
team_tokens = 500000
agent_tokens = 100000

[limits]
max_iterations = 40
max_team_depth = 2
max_agents_per_team = 4

[roles.docs-writer]
prompt = "You write documentation."
tools = ["file_read", "file_write"]
description = "Writes docs"

[pricing."openai:my-finetune"]
input_per_mtok = 3.0
output_per_mtok = 12

[comms]
policy = "open"
allow = [["frontend", "backend"]]

[rebalancer]
stuck_after_s = 120
check_every_s = 10
"""


def test_full_file_round_trip(tmp_path: Path) -> None:
    write(tmp_path, FULL)
    config = load_config(tmp_path)
    assert config.model.default == "anthropic:claude-sonnet-4-5"
    assert config.model.base_url == "http://127.0.0.1:8080/v1"
    assert config.permissions.auto_approve == ("file_edit", "category:write")
    assert config.shell.deny == ("git push",)
    assert config.shell.network is True
    assert config.budgets.team_usd == 2.0
    assert config.limits.max_iterations == 40
    assert config.roles["docs-writer"].tools == ("file_read", "file_write")
    assert config.pricing["openai:my-finetune"].output_per_mtok == 12.0
    assert config.comms.allow == (("frontend", "backend"),)
    assert config.rebalancer.check_every_s == 10


def test_shell_timeout_bounds(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[shell]\ntimeout_s = 601\n") == (
        "shell.timeout_s: must be less than or equal to 600 (got 601)"
    )


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[limits]\nmax_iteratons = 5\n")
    assert message == (
        "limits.max_iteratons: unknown key 'max_iteratons' (did you mean 'max_iterations'?)"
    )


def test_unknown_section(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[limit]\nmax_iterations = 5\n") == (
        "limit: unknown key 'limit' (did you mean 'limits'?)"
    )
    assert error_of(tmp_path, "[zzz]\n") == "zzz: unknown key 'zzz'"


def test_unknown_key_in_role_and_pricing(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[roles.qa]\nprompt = "x"\ntool = ["a"]\n') == (
        "roles.qa.tool: unknown key 'tool' (did you mean 'tools'?)"
    )
    message = error_of(tmp_path, '[pricing."openai:x"]\ninput = 1.0\n')
    assert 'pricing."openai:x".input: unknown key' in message
    assert 'pricing."openai:x".input_per_mtok: is required' in message


def test_must_be_greater_than_zero(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[limits]\nmax_iterations = 0\n") == (
        "limits.max_iterations: must be greater than 0 (got 0)"
    )
    assert "budgets.session_usd: must be greater than 0" in error_of(
        tmp_path, "[budgets]\nsession_usd = -1.0\n"
    )
    assert "pricing.m.input_per_mtok: must be greater than or equal to 0" in error_of(
        tmp_path, "[pricing.m]\ninput_per_mtok = -1\noutput_per_mtok = 1\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[limits]\nmax_iterations = "30"\n', "limits.max_iterations: must be a valid integer"),
        ("[limits]\nmax_iterations = true\n", "limits.max_iterations: must be a valid integer"),
        ("[limits]\nmax_iterations = 2.5\n", "limits.max_iterations: must be a valid integer"),
        ('[shell]\ntimeout_s = "10"\n', "shell.timeout_s: must be a valid number"),
        ('[shell]\nallow = "ls"\n', "shell.allow: must be a valid tuple"),
        ("[shell]\nallow = [1]\n", "shell.allow[0]: must be a valid string"),
        ('[comms]\npolicy = "closed"\n', "comms.policy: must be 'neighbours' or 'open'"),
        ('[comms]\nallow = [["a"]]\n', "comms.allow[0][1]: is required"),
        ("limits = 3\n", "limits: must be a valid dictionary"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_model_default_must_name_provider(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[model]\ndefault = "gpt-4.1"\n') == (
        "model.default: must look like 'provider:model' (got \"gpt-4.1\")"
    )


def test_permission_entries_are_checked(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[permissions]\nauto_approve = ["category:writes"]\n')
    assert message.startswith(
        "permissions.auto_approve[0]: unknown tool category 'writes' in 'category:writes' "
        "(did you mean 'category:write'?)"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("shel", "unknown tool 'shel' (did you mean 'shell'?)"),
        ("file_writer", "unknown tool 'file_writer' (did you mean 'file_write'?)"),
        ("task_creat", "unknown tool 'task_creat' (did you mean 'task_create'?)"),
        ("frobnicate", "unknown tool 'frobnicate'; entries are tool names"),
        ("mcp:", "an 'mcp:' entry needs a server or tool name"),
        ("", "permission entries cannot be empty"),
    ],
)
def test_unknown_tools_in_permissions_are_errors(tmp_path: Path, entry: str, expected: str) -> None:
    message = error_of(tmp_path, f'[permissions]\ndeny = ["git", "{entry}"]\n')
    assert message.startswith(f"permissions.deny[1]: {expected}")


def test_known_permission_entries(tmp_path: Path) -> None:
    entries = (
        '["shell", "peer_message", "category:execute", "mcp:github", "mcp:github.search", "*"]'
    )
    write(tmp_path, f"[permissions]\nauto_approve = {entries}\ndeny = {entries}\n")
    config = load_config(tmp_path)
    assert "mcp:github" in config.permissions.auto_approve
    assert config.permissions.deny[0] == "shell"


def test_shell_network_is_a_boolean(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[shell]\nnetwork = "yes"\n') == (
        'shell.network: must be a valid boolean (got "yes")'
    )


def test_role_needs_prompt_and_valid_name(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[roles.qa]\ntools = ["file_read"]\n') == (
        "roles.qa.prompt: is required"
    )
    assert "roles: role name 'QA Team' must be lower-case" in error_of(
        tmp_path, '[roles."QA Team"]\nprompt = "x"\n'
    )


def test_several_problems_are_listed(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[limits]\nmax_iterations = 0\nmax_team_depth = -1\n")
    assert message.startswith("2 problems:\n")
    assert "  - limits.max_iterations: must be greater than 0" in message
    assert "  - limits.max_team_depth: must be greater than 0" in message


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[limits]\nmax_iterations = \n")
    assert message.startswith("invalid TOML: ")
    assert "line 2, column" in message


def test_duplicate_key_is_invalid_toml(tmp_path: Path) -> None:
    assert "invalid TOML" in error_of(
        tmp_path, "[limits]\nmax_iterations = 1\nmax_iterations = 2\n"
    )


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b"[model]\ndefault = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(tmp_path)


def test_unreadable_path(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).mkdir()
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path)


def test_parse_config_uses_source_name() -> None:
    with pytest.raises(ConfigError, match=r"^custom\.toml: limits\.max_iterations"):
        parse_config("[limits]\nmax_iterations = 0\n", source="custom.toml")


def test_config_is_frozen() -> None:
    config = LoomkinConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.limits.max_iterations = 3  # type: ignore[misc]


def test_shell_network_reaches_the_shell_policy(tmp_path: Path) -> None:
    assert session_options(LoomkinConfig()).settings.shell_policy.network is False
    write(tmp_path, "[shell]\nnetwork = true\n")
    assert session_options(load_config(tmp_path)).settings.shell_policy.network is True


def test_the_stream_idle_timeout_reaches_the_session_settings(tmp_path: Path) -> None:
    assert session_options(LoomkinConfig()).settings.stream_idle_timeout_s == 120.0
    write(tmp_path, "[limits]\nstream_idle_timeout_s = 45\n")
    assert session_options(load_config(tmp_path)).settings.stream_idle_timeout_s == 45.0
    assert error_of(tmp_path, "[limits]\nstream_idle_timeout_s = 0\n") == (
        "limits.stream_idle_timeout_s: must be greater than 0 (got 0)"
    )
    assert error_of(tmp_path, '[limits]\nstream_idle_timeout_s = "1"\n').startswith(
        "limits.stream_idle_timeout_s: must be a valid number"
    )
