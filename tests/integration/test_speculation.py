"""Speculative execution end to end (issue 18, SPEC §3.7) on a real git repository.

Scripted workers stand in for the model; the loop, the tools, the task board, the
scheduler, git worktrees and the speculation service are real, in virtual time. ``ann``
writes the interface (the blocker); ``bob`` starts the client before it is done, on an
assumption about the interface's signature, in his own worktree.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from _pipeline_models import Playbook, Turn, answered
from _speculation import CLIENT, SETTINGS, SIGNATURE, git, open_pipeline, tentative_done

from loomkin.agents.judge import JUDGE_NAME
from loomkin.core.events import (
    ConflictDetected,
    MilestoneEmitted,
    SpeculationDiscarded,
    SpeculationMerged,
    SpeculationValidated,
    SpeculativeMilestoneHeld,
    TaskStatusChanged,
    ToolCallCompleted,
)
from loomkin.errors import UserError
from loomkin.service import Loomkin
from loomkin.testing.models import Call, FunctionModel, Reply

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]


def _interface(signature: str, opened: list[Session]) -> object:
    """ann: waits until bob's speculative work is in, then writes and completes the interface."""

    async def play(turn: Turn) -> Reply:
        k = answered(turn)
        if k == 0:
            await tentative_done(opened[0])
            content = f"{signature}:\n    ...\n"
            return Reply(tool_calls=[Call("file_write", {"path": "api.py", "content": content})])
        if k == 1:
            handoff = {
                "result": "interface written",
                "files_changed": ["api.py"],
                "decisions": [f"signature: {signature}"],
            }
            return Reply(tool_calls=[Call("task_complete", handoff)])
        return Reply(text="interface done")

    return play


async def _client(turn: Turn) -> Reply:
    k = answered(turn)
    if k == 0:
        return Reply(tool_calls=[Call("file_write", {"path": "client.py", "content": CLIENT})])
    if k == 1:
        await asyncio.sleep(2.0)
        done = {"result": "client written", "files_changed": ["client.py"]}
        return Reply(tool_calls=[Call("task_complete", done)])
    return Reply(text="client done")


def _events(recorded: list, kind: type) -> list:
    return [r.event for r in recorded if isinstance(r.event, kind)]


async def test_assumption_holds_work_is_merged_into_the_shared_tree(repo: Path) -> None:
    ref: list[Session] = []
    book = Playbook(parts={"write the client": _client})
    book.parts["write the interface"] = _interface(SIGNATURE, ref)  # type: ignore[assignment]
    async with await Loomkin.open("memory:") as lk:
        session, t1, t2 = await open_pipeline(lk, repo, book.factory, ref)
        info = await session.speculate(t2, "bob", [{"key": "signature", "value": SIGNATURE}])
        assert info.state == "running"
        workspace = repo / ".loomkin" / "worktrees" / t2
        assert info.workspace == str(workspace.resolve())
        assert session.task(t2).status == "pending_speculative"
        await lk.wait_idle()
        recorded = await session.history()

        # bob wrote in his worktree; nothing reached the shared tree before the merge.
        tentative = next(
            r
            for r in recorded
            if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed_tentative"
        )
        blocker_done = next(
            r
            for r in recorded
            if isinstance(r.event, TaskStatusChanged)
            and r.event.task_id == t1
            and r.event.status == "completed"
        )
        assert tentative.position < blocker_done.position
        (validated,) = _events(recorded, SpeculationValidated)
        assert validated.held
        assert validated.verdicts[0]["actual"] == SIGNATURE
        (merged,) = _events(recorded, SpeculationMerged)
        assert merged.files == ("client.py",)
        assert (repo / "client.py").read_text() == CLIENT
        assert (repo / "api.py").read_text().startswith(SIGNATURE)
        assert session.task(t2).status == "completed"
        assert session.task(t2).result == "client written"
        assert not workspace.exists()
        assert f"loomkin/speculation/{t2}" in git(repo, "branch", "--list", "loomkin/*")
        assert session.speculation(t2).state == "merged"
        summary = session.speculation_summary()
        assert (summary.held, summary.merged, summary.discarded) == (1, 1, 0)
        assert not _events(recorded, ConflictDetected)


async def _redo_client(turn: Turn) -> Reply:
    """bob: speculates with the old signature; the redo reads the real one from its brief."""
    k = answered(turn)
    if "[Redo]" in turn.brief:
        if k == 0:
            assert "parse(data: bytes)" in turn.brief
            content = "from api import parse\n\nresult = parse(b'x')\n"
            return Reply(tool_calls=[Call("file_write", {"path": "client.py", "content": content})])
        if k == 1:
            return Reply(tool_calls=[Call("task_complete", {"result": "client redone"})])
        return Reply(text="redone")
    return await _client(turn)


async def test_assumption_fails_work_is_discarded_and_redone(repo: Path) -> None:
    ref: list[Session] = []
    real = "def parse(data: bytes) -> Ast"
    book = Playbook(parts={"write the client": _redo_client})
    book.parts["write the interface"] = _interface(real, ref)  # type: ignore[assignment]
    async with await Loomkin.open("memory:") as lk:
        session, _t1, t2 = await open_pipeline(lk, repo, book.factory, ref)
        await session.speculate(t2, "bob", [{"key": "signature", "value": SIGNATURE}])
        await lk.wait_idle()
        recorded = await session.history()

        (validated,) = _events(recorded, SpeculationValidated)
        assert not validated.held
        (dropped,) = _events(recorded, SpeculationDiscarded)
        assert dropped.reason == "assumption_failed"
        assert "actual" in dropped.detail
        assert real in dropped.detail
        assert dropped.wasted_model_calls >= 2
        assert dropped.wasted_s > 0
        assert not _events(recorded, SpeculationMerged)
        # The speculative client never reached the shared tree; the redo did.
        assert (repo / "client.py").read_text() == "from api import parse\n\nresult = parse(b'x')\n"
        statuses = [
            r.event.status
            for r in recorded
            if isinstance(r.event, TaskStatusChanged) and r.event.task_id == t2
        ]
        assert statuses[:3] == ["pending_speculative", "completed_tentative", "discarded_tentative"]
        assert statuses[-1] == "completed"
        assert session.task(t2).result == "client redone"
        assert not (repo / ".loomkin" / "worktrees" / t2).exists()
        assert git(repo, "branch", "--list", "loomkin/*").strip() == ""
        assert session.speculation(t2).state == "discarded"


async def test_speculation_refused_readably(repo: Path) -> None:
    book = Playbook(parts={})
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(repo, model_factory=book.factory, settings=SETTINGS)
        await session.spawn_agent("bob", "coder")
        ready = await session.create_task("a ready task", assign_to="bob")
        with pytest.raises(UserError, match="not waiting on anything"):
            await session.speculate(ready, "bob", [{"key": "x", "value": 1}])
        with pytest.raises(UserError, match="either a key"):
            await session.speculate(ready, "bob", [{"key": "x", "text": "both"}])
        with pytest.raises(UserError, match="unknown fields"):
            await session.speculate(ready, "bob", [{"keys": "x"}])
        assert session.speculations() == []


def _writer(path: str, content: str, result: str, *, gate: list[Session] | None = None) -> object:
    """Write ``path`` then complete; with ``gate``, only once the dependent finished."""

    async def play(turn: Turn) -> Reply:
        k = answered(turn)
        if k == 0 and "[Redo]" in turn.brief:
            redo = content + "# redone after the conflict\n"
            return Reply(tool_calls=[Call("file_write", {"path": path, "content": redo})])
        if k == 0:
            if gate:
                await tentative_done(gate[0])
            return Reply(tool_calls=[Call("file_write", {"path": path, "content": content})])
        if k == 1:
            handoff = {"result": result, "decisions": [f"signature: {SIGNATURE}"]}
            return Reply(tool_calls=[Call("task_complete", handoff)])
        return Reply(text="done")

    return play


async def test_overlap_is_intended_while_working_and_a_real_conflict_surfaces_at_merge(
    repo: Path,
) -> None:
    ref: list[Session] = []
    book = Playbook()
    book.parts["write the interface"] = _writer(  # type: ignore[assignment]
        "shared.py", "ann = 1\n", "interface written", gate=ref
    )
    book.parts["write the client"] = _writer("shared.py", "bob = 2\n", "client written")  # type: ignore[assignment]
    async with await Loomkin.open("memory:") as lk:
        session, _t1, t2 = await open_pipeline(lk, repo, book.factory, ref)
        await session.speculate(t2, "bob", [{"key": "signature", "value": SIGNATURE}])
        await lk.wait_idle()
        recorded = await session.history()

        # Both wrote shared.py: while they worked that was no conflict (bob's copy is his own).
        (conflict,) = _events(recorded, ConflictDetected)
        assert "at merge" in conflict.description
        assert conflict.path == "shared.py"
        (validated,) = _events(recorded, SpeculationValidated)
        assert validated.held  # the assumption held; the merge is what failed
        (dropped,) = _events(recorded, SpeculationDiscarded)
        assert dropped.reason == "merge_conflict"
        assert dropped.conflicts == ("shared.py",)
        conflict_at = next(r.position for r in recorded if r.event is conflict)
        dropped_at = next(r.position for r in recorded if r.event is dropped)
        assert conflict_at < dropped_at
        # ann's version stayed; the redo (in the shared tree) came after it.
        assert (repo / "shared.py").read_text() == "bob = 2\n# redone after the conflict\n"
        assert session.task(t2).status == "completed"


async def test_edits_to_other_lines_of_a_file_the_shared_tree_changed_are_merged_three_way(
    repo: Path,
) -> None:
    lines = "".join(f"line {n}\n" for n in range(1, 21))
    (repo / "shared.py").write_text(lines)
    git(repo, "add", "shared.py")
    git(repo, "commit", "-q", "-m", "shared module")
    ann_edit = lines.replace("line 2\n", "line 2 by ann\n")
    bob_edit = lines.replace("line 19\n", "line 19 by bob\n")
    ref: list[Session] = []
    book = Playbook()
    book.parts["write the interface"] = _writer(  # type: ignore[assignment]
        "shared.py", ann_edit, "interface written", gate=ref
    )
    book.parts["write the client"] = _writer("shared.py", bob_edit, "client written")  # type: ignore[assignment]
    async with await Loomkin.open("memory:") as lk:
        session, _t1, t2 = await open_pipeline(lk, repo, book.factory, ref)
        await session.speculate(t2, "bob", [{"key": "signature", "value": SIGNATURE}])
        await lk.wait_idle()
        recorded = await session.history()

        (merged,) = _events(recorded, SpeculationMerged)
        assert merged.files == ("shared.py",)
        assert not _events(recorded, SpeculationDiscarded)
        assert (repo / "shared.py").read_text() == lines.replace(
            "line 2\n", "line 2 by ann\n"
        ).replace("line 19\n", "line 19 by bob\n")
        assert session.task(t2).status == "completed"


async def _client_with_milestone(turn: Turn) -> Reply:
    k = answered(turn)
    if k == 0:
        note = {"name": "interface", "note": "client: Client(api)"}
        return Reply(tool_calls=[Call("emit_milestone", note)])
    if k == 1:
        return Reply(tool_calls=[Call("publish_partial", {"content": "half a client"})])
    rest = Turn(task_id=turn.task_id, title=turn.title, brief=turn.brief, since=turn.since[4:])
    return await _client(rest)


async def _docs(turn: Turn) -> Reply:
    if answered(turn) == 0:
        return Reply(tool_calls=[Call("task_complete", {"result": "docs written"})])
    return Reply(text="docs done")


async def test_milestones_of_unconfirmed_work_are_held_until_the_assumptions_hold(
    repo: Path,
) -> None:
    ref: list[Session] = []
    book = Playbook(parts={"write the client": _client_with_milestone, "write the docs": _docs})
    book.parts["write the interface"] = _interface(SIGNATURE, ref)  # type: ignore[assignment]
    async with await Loomkin.open("memory:") as lk:
        session, _t1, t2 = await open_pipeline(lk, repo, book.factory, ref)
        t3 = await session.create_task("write the docs", depends_on=(t2,), milestone="interface")
        await session.spawn_agent("carl", "coder")
        await session.speculate(t2, "bob", [{"key": "signature", "value": SIGNATURE}])
        await lk.wait_idle()
        recorded = await session.history()

        (held,) = _events(recorded, SpeculativeMilestoneHeld)
        assert held.name == "interface"
        refused = [e for e in _events(recorded, ToolCallCompleted) if e.tool == "publish_partial"]
        assert refused[0].is_error
        assert "not confirmed yet" in refused[0].result
        validated_at = next(
            r.position for r in recorded if isinstance(r.event, SpeculationValidated)
        )
        released = next(r for r in recorded if isinstance(r.event, MilestoneEmitted))
        assert released.position == validated_at + 1  # the same batch as the confirmation
        docs_start = next(
            r.position
            for r in recorded
            if isinstance(r.event, TaskStatusChanged)
            and r.event.task_id == t3
            and r.event.status == "in_progress"
        )
        assert docs_start > validated_at  # nobody started on unconfirmed work
        assert session.task(t3).status == "completed"
        assert session.task(t2).status == "completed"


async def test_prose_assumptions_are_judged_by_a_model_and_the_verdict_recorded(
    repo: Path,
) -> None:
    ref: list[Session] = []
    book = Playbook(parts={"write the client": _client})
    book.parts["write the interface"] = _interface(SIGNATURE, ref)  # type: ignore[assignment]
    judged: list[str] = []

    async def judge(request: ModelRequest) -> Reply:
        text = request.messages[-1].text  # type: ignore[union-attr]
        judged.append(text)
        return Reply(text="HOLDS\nThe real signature takes text and returns an Ast.")

    def factory(role: Role, name: str) -> Model:
        if name == JUDGE_NAME:
            return FunctionModel(judge, name="scripted:judge")
        return book.factory(role, name)

    async with await Loomkin.open("memory:") as lk:
        session, _t1, t2 = await open_pipeline(lk, repo, factory, ref)
        prose = "parse takes the text and returns an Ast"
        await session.speculate(t2, "bob", [{"text": prose}])
        await lk.wait_idle()
        recorded = await session.history()

        (validated,) = _events(recorded, SpeculationValidated)
        assert validated.held
        assert validated.verdicts[0]["reasoning"] == (
            "The real signature takes text and returns an Ast."
        )
        (asked,) = judged
        assert prose in asked
        assert SIGNATURE in asked  # the judge saw the real hand-off
        assert session.task(t2).status == "completed"
        assert (repo / "client.py").read_text() == CLIENT
