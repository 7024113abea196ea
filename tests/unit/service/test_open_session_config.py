"""Every way of opening a session reads the project's loomkin.toml (the facade does it)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.errors import ConfigError
from loomkin.service import Loomkin
from loomkin.service.config import parse_config
from loomkin.testing.internals import session_runtime
from loomkin.testing.wire import SSE, SSEReply, WireServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

TOML = """
[model]
default = "ollama:llama3"

[permissions]
deny = ["shell"]
auto_approve = ["file_edit"]

[limits]
max_iterations = 3
max_agents_per_team = 2

[budgets]
session_usd = 1.5

[shell]
network = true

[pricing."ollama:llama3"]
input_per_mtok = 1.0
output_per_mtok = 2.0
"""


@pytest.fixture
async def lk() -> AsyncIterator[Loomkin]:
    async with await Loomkin.open("memory:") as runtime:
        yield runtime


async def test_open_session_reads_loomkin_toml(lk: Loomkin, tmp_path: Path) -> None:
    (tmp_path / "loomkin.toml").write_text(TOML)
    session = await lk.open_session(tmp_path)
    runtime = session_runtime(session)
    assert runtime.ctx.policy.deny == {"shell"}
    assert runtime.ctx.policy.auto_approve == {"file_edit"}
    assert runtime.settings.max_iterations == 3
    assert runtime.settings.max_agents_per_team == 2
    assert runtime.settings.budgets.session_usd == 1.5
    assert runtime.settings.shell_policy.network is True
    assert lk.stored_session(session.session_id).model == "ollama:llama3"


async def test_what_the_caller_gives_wins_over_the_file(lk: Loomkin, tmp_path: Path) -> None:
    (tmp_path / "loomkin.toml").write_text(TOML)
    session = await lk.open_session(
        tmp_path, model="vllm:qwen", settings=SessionSettings(max_iterations=7)
    )
    runtime = session_runtime(session)
    assert runtime.settings.max_iterations == 7
    assert runtime.ctx.policy.deny == {"shell"}  # not given: still the file's
    assert lk.stored_session(session.session_id).model == "vllm:qwen"


async def test_resume_session_reads_loomkin_toml(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    project = tmp_path / "p"
    project.mkdir()
    async with await Loomkin.open(store) as lk:
        session_id = (await lk.open_session(project, model="ollama:llama3")).session_id
    (project / "loomkin.toml").write_text(TOML)
    async with await Loomkin.open(store) as lk:
        resumed = await lk.resume_session(session_id)
        runtime = session_runtime(resumed)
        assert runtime.ctx.policy.deny == {"shell"}
        assert runtime.settings.max_iterations == 3


async def test_a_broken_file_refuses_the_session_and_writes_nothing(
    lk: Loomkin, tmp_path: Path
) -> None:
    (tmp_path / "loomkin.toml").write_text('[permissions]\ndeny = ["shel"]\n')
    with pytest.raises(ConfigError, match="did you mean 'shell'"):
        await lk.open_session(tmp_path, model="ollama:llama3")
    (tmp_path / "loomkin.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        await lk.open_session(tmp_path, model="ollama:llama3")
    assert lk.sessions() == []


def _answer() -> SSEReply:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hello"}, "finish_reason": "stop"}],
    }
    return SSEReply(events=(SSE(json.dumps(chunk)), SSE("[DONE]")))


async def _key_received(lk: Loomkin, project: Path, **options: str) -> str:
    async with WireServer(lambda _request: _answer()) as server:
        text = (project / "loomkin.toml").read_text().replace("SERVER", server.base_url)
        (project / "loomkin.toml").write_text(text)
        if options.get("base_url") == "SERVER":
            options["base_url"] = server.base_url + "/v1"
        session = await lk.open_session(project, **options)
        await session.send("hi")
        await session.wait_idle()
        assert server.requests, "the model was never called"
        return server.requests[0].headers["authorization"].removeprefix("Bearer ")


async def test_the_files_server_gets_the_files_key(
    lk: Loomkin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("TEAM_LLM_KEY", "sk-team")
    (tmp_path / "loomkin.toml").write_text(
        '[model]\ndefault = "openai:gpt-test"\nbase_url = "SERVER/v1"\n'
        'api_key_env = "TEAM_LLM_KEY"\n'
    )
    assert await _key_received(lk, tmp_path) == "sk-team"


async def test_a_callers_server_never_gets_the_files_key(
    lk: Loomkin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's key variable was named for the file's server, not for another one."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("TEAM_LLM_KEY", "sk-team")
    (tmp_path / "loomkin.toml").write_text(
        '[model]\nbase_url = "https://llm.team.example/v1"\napi_key_env = "TEAM_LLM_KEY"\n'
    )
    key = await _key_received(lk, tmp_path, model="openai:gpt-test", base_url="SERVER")
    assert key == "loomkin-local"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[model]\napi_key_env = "sk-live-123"\n', "not an environment variable name"),
        ('[model]\napi_key_env = "1KEY"\n', "not an environment variable name"),
        ('[model]\nbase_url = "ftp://models/v1"\n', "must look like http://host:port/v1"),
        ('[model]\nbase_url = "https://user:pw@llm.example/v1"\n', "no credentials"),
    ],
)
def test_model_section_is_checked(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_config(text)
    assert parse_config('[model]\napi_key_env = "TEAM_LLM_KEY"\n').model.api_key_env == (
        "TEAM_LLM_KEY"
    )
