"""The real model, offline: llama.cpp with the packaged Gemma 3 270M (the ``local`` extra).

Two halves: the OpenAI adapter against llama-cpp-python's OpenAI-compatible server (started
once per session on a loopback port), and a robustness run of a three-agent session on the
in-process ``local`` provider. A 270M base model is weak on purpose: the point is that every
odd answer ends in a clear, recorded outcome, never a crash or a hang.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from loomkin.core.chat import AssistantMessage, SystemMessage, ToolCall, UserMessage
from loomkin.core.events import (
    AgentCrashed,
    AgentSpawned,
    LoopFinished,
    ModelCallCompleted,
    ToolCallCompleted,
)
from loomkin.errors import ProviderError
from loomkin.llm.model import ModelRequest, TextDelta, ToolSchema, complete
from loomkin.llm.profiles import LLAMACPP_PROFILE, EndpointProfile
from loomkin.llm.providers.openai import OpenAIModel

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loomkin.core.records import PermissionDecision
    from loomkin.service import PendingPermission

# Look for llama_cpp without importing it: its import opens two /dev/null files it never
# closes (llama_cpp/_utils.py), and collecting this module with its tests deselected would
# then print "ResourceWarning: unclosed file" at the end of every run. The local provider
# imports it lazily, so only the llama tests themselves pay for it.
if importlib.util.find_spec("llama_cpp") is None:
    if os.environ.get("CI"):  # CI installs the extra (scripts/test.sh): a skip there hides a bug
        raise AssertionError("CI is set but llama_cpp is missing: uv sync --extra local")
    pytest.skip("needs the local extra: uv sync --extra local", allow_module_level=True)
local = pytest.importorskip("loomkin.llm.providers.local")

pytestmark = [pytest.mark.llama, pytest.mark.timeout(300)]

ITERATIONS = int(os.environ.get("LOOMKIN_LLAMA_ITERATIONS", "2"))
"""Model calls each agent of the robustness run may make: 2 in the suite (about 6 calls, 3
agents that each call a tool and then answer its result). ``LOOMKIN_LLAMA_ITERATIONS=4`` is
the run the README's figures come from (12 calls, about 73 s on two cores)."""

READ_FILE = ToolSchema(
    name="read_file",
    description="Read a file of the project.",
    parameters={
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
        "additionalProperties": False,
    },
)


@pytest.fixture(scope="session")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = local.model_path(local.PACKAGED_MODEL, cache_dir=tmp_path_factory.mktemp("m"))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server(gguf: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a loopback port; yields its ``/v1``."""
    port = _free_port()
    log = gguf.parent / "server.log"  # a file, not a pipe: a full pipe would block the server
    command = [
        *(sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)),
        *("--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"),
        *("--chat_format", "chatml-function-calling"),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}/v1/models", log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"llama_cpp.server exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)  # polling a child process, bounded by the deadline
    pytest.fail("llama_cpp.server did not answer within 60 s")


def _model(url: str, profile: EndpointProfile = LLAMACPP_PROFILE) -> OpenAIModel:
    return OpenAIModel("gemma", api_key="x", base_url=url, profile=profile, provider="llamacpp")


def _ask(text: str, *, tools: tuple[ToolSchema, ...] = ()) -> ModelRequest:
    return ModelRequest(
        messages=(SystemMessage(text="You are a helpful assistant."), UserMessage(text=text)),
        tools=tools,
        max_tokens=32,
        temperature=0.0,
    )


# -- the OpenAI adapter against the real llama.cpp server ---------------------------------------


async def test_streamed_text(server: str) -> None:
    model = _model(server)
    events = [e async for e in model.stream(_ask("Name a colour."))]
    await model.aclose()
    assert any(isinstance(e, TextDelta) and e.text for e in events)
    assert events[-1].kind == "end"
    assert events[-1].stop_reason in ("stop", "length")


async def test_tool_call_is_made_whole_and_valid(server: str) -> None:
    model = _model(server)
    response = await complete(model, _ask("Read the file README.md.", tools=(READ_FILE,)))
    await model.aclose()
    assert response.complete
    # The server's grammar picks either a message (often empty) or a call with valid JSON.
    for call in response.tool_calls:
        assert call.name == "read_file"
        assert isinstance(json.loads(call.arguments)["path"], str)
    print(f"\nserver answer: calls={len(response.tool_calls)} text={response.text!r}")


async def test_multi_turn_with_a_tool_result(server: str) -> None:
    call = ToolCall(call_id="call_1", name="read_file", arguments='{"path": "README.md"}')
    request = ModelRequest(
        messages=(
            UserMessage(text="What does README.md say?"),
            AssistantMessage(text="", tool_calls=(call,)),
            _result(call, "Loomkin runs teams of coding agents."),
        ),
        tools=(READ_FILE,),
        max_tokens=32,
        temperature=0.0,
    )
    model = _model(server)
    response = await complete(model, request)
    await model.aclose()
    assert response.complete


async def test_null_content_beside_tool_calls_is_what_the_profile_avoids(server: str) -> None:
    call = ToolCall(call_id="call_1", name="read_file", arguments='{"path": "a"}')
    request = ModelRequest(
        messages=(UserMessage(text="hi"), AssistantMessage(text="", tool_calls=(call,))),
        max_tokens=8,
    )
    naive = _model(server, EndpointProfile(name="naive"))
    with pytest.raises(ProviderError):
        await complete(naive, request)
    await naive.aclose()
    model = _model(server)
    assert (await complete(model, request)).complete
    await model.aclose()


async def test_closing_a_stream_early_leaves_the_server_usable(server: str) -> None:
    model = _model(server)
    stream = model.stream(_ask("Count from one to fifty."))
    first = await anext(stream)
    await stream.aclose()
    assert first.kind in ("text", "usage", "end")
    assert (await complete(model, _ask("Say yes."))).complete
    await model.aclose()


def _result(call: ToolCall, text: str) -> object:
    from loomkin.core.chat import ToolResultMessage

    return ToolResultMessage(call_id=call.call_id, name=call.name, content=text)


# -- the in-process local provider -------------------------------------------------------------


async def test_local_model_streams_a_valid_tool_call(gguf: Path) -> None:
    model = local.LocalModel(cache_dir=gguf.parent, n_ctx=4096, n_threads=2, seed=0)
    response = await complete(model, _ask("Read the file README.md.", tools=(READ_FILE,)))
    assert response.stop_reason in ("tool_calls", "length")
    if response.stop_reason == "tool_calls":
        (call,) = response.tool_calls
        assert call.name == "read_file"
        assert isinstance(json.loads(call.arguments)["path"], str)
    text = await complete(model, _ask("Say hello."))
    assert text.complete
    assert not text.tool_calls
    await model.aclose()


async def test_closing_the_local_stream_stops_generation(gguf: Path) -> None:
    model = local.LocalModel(cache_dir=gguf.parent, n_ctx=4096, n_threads=2, seed=0)
    request = _ask("Write a long story.")
    request = ModelRequest(messages=request.messages, max_tokens=2000)
    stream = model.stream(request)
    started = time.monotonic()
    async for event in stream:
        if isinstance(event, TextDelta) and event.text:
            break
    await stream.aclose()  # returns once the worker thread has stopped
    assert time.monotonic() - started < 20  # 2000 tokens would take far longer
    assert (await complete(model, _ask("Say yes."))).complete  # the context is free again
    await model.aclose()


async def test_robustness_run_on_the_local_model(tmp_path: Path, gguf: Path) -> None:
    from loomkin.agents import SessionSettings
    from loomkin.demo import copy_sample_project
    from loomkin.service import Loomkin

    project = await asyncio.to_thread(copy_sample_project, tmp_path / "sample")
    model = local.LocalModel(cache_dir=gguf.parent, n_ctx=4096, n_threads=2, seed=0, max_tokens=96)
    settings = SessionSettings(max_iterations=ITERATIONS, max_agents_per_team=3, max_team_depth=1)
    started = time.monotonic()
    async with await Loomkin.open("memory:") as loomkin:
        session = await loomkin.open_session(project, model=model, settings=settings)
        session.set_permission_responder(_allow)
        await session.send("Add a farewell() function to greetings and test it.")
        await session.spawn_agent("alice", "coder")
        await session.send("Add a docstring to greetings/core.py.", to="alice")
        async with asyncio.timeout(240):
            await session.wait_idle()
        summary = await session.summary()
        recorded = await session.history()
    await model.aclose()
    figures = _check_log(recorded)
    figures["tokens"] = summary.input_tokens + summary.output_tokens
    figures["seconds"] = round(time.monotonic() - started, 1)
    print(f"\nrobustness figures: {json.dumps(figures)}")
    assert figures["agents"] >= 3
    assert figures["model_calls"] >= 3


async def _allow(_prompt: PendingPermission) -> PermissionDecision:
    return "allow_once"


def _check_log(recorded: list) -> dict[str, int]:  # type: ignore[type-arg]
    """Check the log is consistent and count what happened."""
    positions = [r.position for r in recorded]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    events = [r.event for r in recorded]
    assert not [e for e in events if isinstance(e, AgentCrashed)]
    calls = [c for e in events if isinstance(e, ModelCallCompleted) for c in e.tool_calls]
    results = {e.call_id: e for e in events if isinstance(e, ToolCallCompleted)}
    malformed = [c for c in calls if not _valid_json(str(c["arguments"]))]
    for call in calls:  # every call, well-formed or not, got exactly one result
        assert call["call_id"] in results, f"unanswered tool call {call}"
    for call in malformed:
        assert results[str(call["call_id"])].is_error
    errors = [r for r in results.values() if r.is_error]
    loops = [e for e in events if isinstance(e, LoopFinished)]
    assert all(e.outcome in ("final", "max_iterations", "error") for e in loops)
    return {
        "agents": sum(isinstance(e, AgentSpawned) for e in events),
        "model_calls": sum(isinstance(e, ModelCallCompleted) for e in events),
        "tool_calls": len(calls),
        "malformed_calls": len(malformed),
        "error_results": len(errors),
        "recoveries": _recoveries(events),
        "loops": len(loops),
        "max_iterations": sum(e.outcome == "max_iterations" for e in loops),
    }


def _valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _recoveries(events: list) -> int:  # type: ignore[type-arg]
    """Error results followed by a successful tool call of the same agent."""
    count = 0
    failing: set[str] = set()
    for event in events:
        if isinstance(event, ToolCallCompleted):
            agent = str(event.agent_id)
            if event.is_error:
                failing.add(agent)
            elif agent in failing:
                failing.discard(agent)
                count += 1
    return count
