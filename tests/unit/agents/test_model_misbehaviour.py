"""Issue #14: whatever a model (or its provider) sends, the agent never crashes.

Pathological arguments become error results the model reads; duplicate, missing or odd ids
and names are journaled under ids of our own; any exception out of a stream is a failed,
journaled and retried model call.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar

import pytest

from loomkin.agents import SessionSettings
from loomkin.agents.modelcall import INVALID_TOOL_NAME
from loomkin.core.chat import (
    AssistantMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
    message_to_json,
)
from loomkin.core.events import (
    LoopFinished,
    ModelCallCompleted,
    ModelCallFailed,
    ToolCallCompleted,
    TranscriptAppended,
)
from loomkin.errors import ProviderError
from loomkin.llm.model import StreamEnd, TextDelta, ToolCallDelta, UsageReport
from loomkin.service import Loomkin as Runtime
from loomkin.testing.internals import event_log
from loomkin.testing.models import Call, Fail, Raw, Reply, ScriptedModel, ScriptStep
from loomkin.tools.permissions import PermissionPolicy

from .conftest import Rig, make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import Event
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

ALLOW_ALL = PermissionPolicy(auto_approve=frozenset({"*"}))


async def run(lk: Loomkin, project: Path, script: list[ScriptStep]) -> Rig:
    """Let a coder play ``script`` from one message to its end; check it never crashed."""
    rig = await make_rig(lk, project, ScriptedModel(script), policy=ALLOW_ALL)
    await rig.send("go")
    await lk.wait_idle()
    assert not await rig.agent_events("agent_crashed", "agent_failed_permanently")
    assert rig.agent.memory.status == "idle"
    return rig


E = TypeVar("E")


def of(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"path": ' + DEEP + "}", "nested too deeply"),
        ('{"path": ' + "[" * 70 + "]" * 70 + "}", "nested too deeply"),
        ('{"path": ' + "9" * 5000 + "}", "too long"),
        ('{"path": NaN}', "NaN is not valid JSON"),
        ('{"path": 1e999}', "too large"),
        ('{"path": "\\ud800"}', "lone surrogate"),
        ('["README.md"]', "expected a JSON object, got an array"),
        ('"README.md"', "got a string"),
        ("null", "got null"),
        ('{"path": "a\\u0000b"}', "NUL byte"),
    ],
    ids=[
        "nested-100k",
        "nested-70",
        "huge-int",
        "nan",
        "inf",
        "surrogate",
        "array",
        "string",
        "null",
        "nul-byte",
    ],
)
async def test_pathological_arguments_become_error_results(
    lk: Loomkin, project: Path, arguments: str, expected: str
) -> None:
    rig = await run(
        lk, project, [Reply(tool_calls=[Call("file_read", arguments)]), Reply(text="noted")]
    )
    events = await rig.agent_events()
    (result,) = of(events, ToolCallCompleted)
    assert (result.is_error, result.outcome) == (True, "error")
    assert expected.lower() in result.result.lower(), result.result
    assert "Traceback" not in result.result
    (finished,) = of(events, LoopFinished)
    assert finished.outcome == "final"


async def test_duplicate_and_missing_call_ids_get_ids_of_our_own(
    lk: Loomkin, project: Path
) -> None:
    calls = [
        Call("file_read", {"path": "README.md"}, call_id="dup"),
        Call("file_read", {"path": "app.py"}, call_id="dup"),
        Call("file_read", {"path": "README.md"}, call_id=""),
    ]
    rig = await run(lk, project, [Reply(tool_calls=calls), Reply(text="read them")])
    events = await rig.agent_events()
    (completed, _) = of(events, ModelCallCompleted)
    ours = [c["call_id"] for c in completed.tool_calls]
    assert len(set(ours)) == 3
    assert [c["provider_call_id"] for c in completed.tool_calls][:2] == ["dup", "dup"]
    results = of(events, ToolCallCompleted)
    assert [r.call_id for r in results] == ours
    assert [r.is_error for r in results] == [False, False, False]
    assert "def hello" in results[1].result


async def test_a_tool_name_no_provider_takes_back_is_replaced(lk: Loomkin, project: Path) -> None:
    rig = await run(
        lk, project, [Reply(tool_calls=[Call("read file!\n", {}), Call("", {})]), Reply(text="ok")]
    )
    events = await rig.agent_events()
    (completed, _) = of(events, ModelCallCompleted)
    assert [(c["name"], c.get("provider_name")) for c in completed.tool_calls] == [
        (INVALID_TOOL_NAME, "read file!\n"),
        (INVALID_TOOL_NAME, ""),
    ]
    results = of(events, ToolCallCompleted)
    assert all(r.is_error and "Unknown tool" in r.result for r in results)


async def test_lone_surrogates_in_the_answer_are_replaced(lk: Loomkin, project: Path) -> None:
    rig = await run(lk, project, [Reply(text="bad \ud800 char")])
    last = rig.agent.memory.transcript[-1]
    assert last == AssistantMessage(text="bad \ufffd char")


@pytest.mark.parametrize(
    "failure",
    [
        Reply(text="half an ans", fail_after=RuntimeError("bug in the model")),
        Reply(text="half", fail_after=json.JSONDecodeError("Expecting value", "data: {", 6)),
        Reply(text="half", fail_after=UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid")),
        Fail(ValueError("broke before the first chunk")),
        Raw(events=[TextDelta(text=42)]),  # type: ignore[arg-type]
        Raw(events=[ToolCallDelta(index="x", name="file_read")]),  # type: ignore[arg-type]
        Raw(events=[UsageReport(input_tokens=-1, output_tokens=0), StreamEnd(stop_reason="stop")]),
        Raw(events=[TextDelta(text="no end")]),
    ],
    ids=[
        "runtime-error",
        "json-decode",
        "unicode-decode",
        "before-first",
        "text-int",
        "index-str",
        "negative-usage",
        "no-end",
    ],
)
async def test_an_exception_from_the_stream_is_a_failed_attempt_that_is_retried(
    lk: Loomkin, project: Path, failure: ScriptStep
) -> None:
    rig = await run(lk, project, [failure, Reply(text="second try")])
    events = await rig.agent_events()
    (failed,) = of(events, ModelCallFailed)
    assert (failed.attempt, failed.will_retry, failed.delay_s) == (
        1,
        True,
        pytest.approx(1.0, 0.11),
    )
    (completed,) = of(events, ModelCallCompleted)
    assert completed.call_id == failed.call_id  # one logical call, two attempts
    assert completed.text == "second try"
    assert rig.agent.memory.transcript[-1] == AssistantMessage(text="second try")


async def test_failures_past_the_retry_limit_end_the_loop_with_the_reason(
    lk: Loomkin, project: Path
) -> None:
    broken = Reply(text="x", fail_after=RuntimeError("always broken"))
    rig = await run(lk, project, [broken] * 4)
    events = await rig.agent_events()
    failed = of(events, ModelCallFailed)
    assert [(f.attempt, f.will_retry) for f in failed] == [
        (1, True),
        (2, True),
        (3, True),
        (4, False),
    ]
    assert "RuntimeError: always broken" in failed[-1].error
    (finished,) = of(events, LoopFinished)
    assert finished.outcome == "error"
    assert "always broken" in finished.text
    assert not of(events, ModelCallCompleted)


async def test_a_permanent_provider_error_is_not_retried(lk: Loomkin, project: Path) -> None:
    rig = await run(lk, project, [Fail(ProviderError("HTTP 400: bad request"))])
    failed = of(await rig.agent_events(), ModelCallFailed)
    assert [(f.attempt, f.will_retry) for f in failed] == [(1, False)]
    assert len(rig.model.requests) == 1  # type: ignore[attr-defined]


@pytest.mark.looptime(False)  # a real SQLite file, written from a thread
async def test_a_journaled_pathological_call_replays_without_crashing(tmp_path: Path) -> None:
    """The call is journaled before it runs; on main its arguments crashed every restart."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# hi\n")
    url = f"sqlite:///{tmp_path}/s.db"
    settings = SessionSettings(bootstrap_orienter=False)
    idle = ScriptedModel([], name="scripted:idle")
    bad = [
        ToolCall(call_id="call_deep", name="file_read", arguments='{"path": ' + DEEP + "}"),
        ToolCall(call_id="call_int", name="file_read", arguments='{"path": ' + "7" * 9000 + "}"),
        ToolCall(call_id="call_nul", name="file_read", arguments='{"path": "a\\u0000b"}'),
    ]
    async with await Runtime.open(url) as lk:
        session = await lk.open_session(
            project, model_factory=lambda _r, _n: idle, settings=settings, policy=ALLOW_ALL
        )
        worker = await session.spawn_agent("worker", "coder")
        session_id = session.session_id
        # What main journaled before crashing on the first call: the request and the answer.
        for message in (UserMessage(text="go"), AssistantMessage(tool_calls=tuple(bad))):
            await event_log(lk).append(
                TranscriptAppended(
                    session_id=session.session_id,
                    agent_id=worker.agent_id,
                    message=message_to_json(message),
                )
            )

    model = ScriptedModel([Reply(text="I will send proper arguments.")])
    async with await Runtime.open(url) as lk:
        session = await lk.resume_session(session_id, model_factory=lambda _r, _n: model)
        await lk.wait_idle()
        events = [r.event for r in await session.history()]
    assert not [e for e in events if e.kind in ("agent_crashed", "agent_failed_permanently")]
    results = of(events, ToolCallCompleted)
    assert [(r.call_id, r.is_error) for r in results] == [(c.call_id, True) for c in bad]
    assert "nested too deeply" in results[0].result
    assert "too long" in results[1].result
    seen = model.requests[0].messages
    assert [m.call_id for m in seen if isinstance(m, ToolResultMessage)] == [c.call_id for c in bad]
    assert [e.outcome for e in of(events, LoopFinished)] == ["final"]
