"""Issue #3: bad model output, tool failures, provider failures and limits never crash an agent."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.core.events import (
    AgentCrashed,
    AssistantReplied,
    LoopFinished,
    ModelCallFailed,
    TaskStatusChanged,
    ToolCallCompleted,
)
from loomkin.errors import ProviderUnavailable, RateLimited
from loomkin.llm.retry import RetryingModel, RetryPolicy
from loomkin.testing.models import Call, Fail, Reply, ScriptedModel
from loomkin.tools.permissions import PermissionPolicy

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.service import Loomkin

ALLOW_ALL = PermissionPolicy(auto_approve=frozenset({"*"}))


async def run_one(
    lk: Loomkin,
    project: Path,
    script: list[Reply | Fail],
    *,
    settings: SessionSettings | None = None,
) -> tuple[list[ToolCallCompleted], LoopFinished, ScriptedModel]:
    """Send one message to a coder playing ``script``; return its tool results and outcome."""
    model = ScriptedModel(script)
    rig = await make_rig(lk, project, model, policy=ALLOW_ALL, settings=settings)
    await rig.send("go")
    await lk.wait_idle()
    results = list(await rig.agent_events("tool_call_completed"))
    finished = list(await rig.agent_events("loop_finished"))
    assert not await rig.agent_events("agent_crashed")
    assert len(finished) == 1
    assert all(isinstance(e, ToolCallCompleted) for e in results)
    assert isinstance(finished[0], LoopFinished)
    assert rig.agent.memory.status == "idle"
    return results, finished[0], model  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (Call("file_read", '{"path": "README.md"'), "not valid JSON"),
        (Call("no_such_tool", {"x": 1}), "no_such_tool"),
        (Call("file_read", {"path": 42, "bogus": True}), "path"),
        (Call("file_read", {}), "path"),
        (Call("shell", {"command": ""}), "command"),
    ],
    ids=["invalid-json", "unknown-tool", "wrong-types", "missing-argument", "schema-violation"],
)
async def test_malformed_tool_calls_become_readable_errors(
    lk: Loomkin, project: Path, call: Call, expected: str
) -> None:
    results, finished, model = await run_one(
        lk, project, [Reply(tool_calls=[call]), Reply(text="I fixed my call.")]
    )
    (result,) = results
    assert result.is_error
    assert result.outcome == "error"
    assert result.result.startswith("Error: ")
    assert expected.lower() in result.result.lower()
    assert "Traceback" not in result.result
    assert finished.outcome == "final"
    # The model read the error in its next request, as a tool result for its own call.
    last = model.requests[-1].messages[-1]
    assert getattr(last, "content", None) == result.result


async def test_unknown_tool_result_lists_the_tools_it_may_use(lk: Loomkin, project: Path) -> None:
    results, _, _ = await run_one(
        lk, project, [Reply(tool_calls=[Call("delete_everything")]), Reply(text="ok")]
    )
    assert "file_read" in results[0].result


@pytest.mark.parametrize(
    "path", ["../outside.txt", "/tmp/loomkin-outside.txt", "sub/../../outside.txt", "link/x.txt"]
)
async def test_file_tools_refuse_paths_outside_the_project(
    lk: Loomkin, project: Path, tmp_path: Path, path: str
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, project / "link")
    results, finished, _ = await run_one(
        lk,
        project,
        [
            Reply(
                tool_calls=[
                    Call("file_write", {"path": path, "content": "pwned"}),
                    Call("file_read", {"path": path}),
                ]
            ),
            Reply(text="understood"),
        ],
    )
    assert [r.is_error for r in results] == [True, True]
    assert all("project" in r.result.lower() for r in results), [r.result for r in results]
    assert not (tmp_path / "outside.txt").exists()
    assert not (outside / "x.txt").exists()
    assert finished.outcome == "final"


async def test_failing_shell_command_gives_its_output_and_exit_code(
    lk: Loomkin, project: Path
) -> None:
    results, finished, _ = await run_one(
        lk,
        project,
        [
            Reply(tool_calls=[Call("shell", {"command": "echo something broke; exit 3"})]),
            Reply(text="The command failed with exit code 3."),
        ],
    )
    (result,) = results
    assert result.is_error
    assert "something broke" in result.result
    assert "[exit code 3]" in result.result
    assert finished.outcome == "final"


@pytest.mark.looptime
async def test_rate_limit_then_success_is_retried_and_the_loop_completes(
    lk: Loomkin, project: Path
) -> None:
    inner = ScriptedModel([Fail(RateLimited("429 slow down")), Reply(text="all good")])
    retries: list[tuple[int, float]] = []
    model = RetryingModel(
        inner,
        policy=RetryPolicy(random=lambda: 0.0),
        on_retry=lambda attempt, _err, delay: retries.append((attempt, delay)),
    )
    rig = await make_rig(lk, project, model)
    await rig.send("go")
    await lk.wait_idle()
    (finished,) = await rig.agent_events("loop_finished")
    assert isinstance(finished, LoopFinished)
    assert (finished.outcome, finished.text) == ("final", "all good")
    assert retries == [(1, 1.0)]
    assert len(inner.requests) == 2
    assert not await rig.agent_events("agent_crashed")
    # The retry is visible: one failed attempt, journaled with its delay, then the answer.
    (failed,) = await rig.agent_events("model_call_failed")
    assert isinstance(failed, ModelCallFailed)
    assert (failed.attempt, failed.will_retry, failed.delay_s) == (1, True, 1.0)
    assert failed.error == "429 slow down"


@pytest.mark.looptime
async def test_provider_failing_forever_ends_the_loop_with_an_error(
    lk: Loomkin, project: Path
) -> None:
    inner = ScriptedModel([Fail(ProviderUnavailable("500 internal error", status=500))] * 10)
    model = RetryingModel(inner, policy=RetryPolicy(max_retries=3, random=lambda: 0.0))
    rig = await make_rig(lk, project, model)
    await rig.send("go")
    await lk.wait_idle()
    failed = list(await rig.agent_events("model_call_failed"))
    (finished,) = await rig.agent_events("loop_finished")
    assert all(isinstance(f, ModelCallFailed) for f in failed)
    # Three retries announced with their backoff, then the final failure.
    assert [(f.attempt, f.will_retry, f.delay_s) for f in failed] == [  # type: ignore[attr-defined]
        (1, True, 1.0),
        (2, True, 2.0),
        (3, True, 4.0),
        (4, False, 0.0),
    ]
    assert all("500 internal error" in f.error for f in failed)  # type: ignore[attr-defined]
    assert len({f.call_id for f in failed}) == 1  # type: ignore[attr-defined]
    assert isinstance(finished, LoopFinished)
    assert finished.outcome == "error"
    assert "500 internal error" in finished.text
    assert len(inner.requests) == 4  # one try and three retries
    assert not await rig.agent_events("agent_crashed")
    assert rig.agent.memory.status == "idle"
    assert not [e for e in await rig.events() if isinstance(e, AgentCrashed)]


async def test_iteration_limit_ends_the_loop_with_a_clear_text(lk: Loomkin, project: Path) -> None:
    looping = [Reply(tool_calls=[Call("file_read", {"path": "README.md"})])] * 5
    results, finished, model = await run_one(
        lk, project, looping, settings=SessionSettings(bootstrap_orienter=False, max_iterations=3)
    )
    assert finished.outcome == "max_iterations"
    assert "iteration limit (3 model calls)" in finished.text
    assert finished.iterations == 3
    assert len(model.requests) == 3
    assert len(results) == 3


async def test_completion_nudge_then_task_completed_from_the_final_answer(
    lk: Loomkin, project: Path
) -> None:
    model = ScriptedModel([Reply(text="I did it."), Reply(text="The README is fine as it is.")])
    rig = await make_rig(lk, project, model)
    task_id = await rig.session.create_task("Check the README", assign_to="worker")
    await lk.wait_idle()
    assert len(model.requests) == 2
    nudges = [
        m for m in model.requests[1].messages if "Your task is still open" in getattr(m, "text", "")
    ]
    assert len(nudges) == 1
    assert rig.session.task(task_id).status == "completed"
    changes = [
        e for e in await rig.events("task_status_changed") if isinstance(e, TaskStatusChanged)
    ]
    completed = [c for c in changes if c.task_id == task_id and c.status == "completed"]
    assert len(completed) == 1
    assert completed[0].result == "The README is fine as it is."
    assert "did not call task_complete" in completed[0].note
    (finished,) = await rig.agent_events("loop_finished")
    assert isinstance(finished, LoopFinished)
    assert finished.outcome == "final"
    assert rig.agent.memory.task_id is None
    assert not [e for e in await rig.events() if isinstance(e, AssistantReplied)]
