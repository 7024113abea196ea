"""``loomkin questions list|answer`` and the terminal prompt of an interactive run."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from loomkin.cli import control, questions
from loomkin.cli.control import write_server_info
from loomkin.cli.main import cli
from loomkin.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from loomkin.cli.control import ServerInfo

OPEN = {
    "question_id": "q_1",
    "agent_id": "a_1",
    "agent": "ann",
    "team": "root",
    "question": "Which colour?",
    "deadline": 2e9,
    "seconds_left": 41.2,
}


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, object]]:
    """Route the commands' API calls to a fake server that knows one open question."""
    write_server_info(tmp_path, url="http://127.0.0.1:9", session_id="s_1", token="t")
    made: list[tuple[str, str, object]] = []

    def call(
        _info: ServerInfo, method: str, path: str, body: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        made.append((method, path, body))
        if method == "GET":
            return {"result": [OPEN] if len(made) == 1 else []}
        if path != "/api/sessions/s_1/questions/q_1/answer":
            raise UserError("the server refused (404): no question 'q_2' was asked of the user")
        return OPEN

    monkeypatch.setattr(control, "call", call)  # what session_request calls
    return made


def test_list_shows_the_open_questions_then_none(
    tmp_path: Path, calls: list[tuple[str, str, object]]
) -> None:
    shown = CliRunner().invoke(cli, ["questions", "list", "--project", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "q_1 ann (team root, 42 s left): Which colour?" in shown.output
    assert calls == [("GET", "/api/sessions/s_1/questions", None)]
    empty = CliRunner().invoke(cli, ["questions", "list", "--project", str(tmp_path)])
    assert "No open questions." in empty.output


def test_answer_posts_the_text_and_refusals_are_one_line(
    tmp_path: Path, calls: list[tuple[str, str, object]]
) -> None:
    project = ["--project", str(tmp_path)]
    done = CliRunner().invoke(cli, ["questions", "answer", "q_1", "blue", *project])
    assert done.exit_code == 0, done.output
    assert "answered ann's question q_1" in done.output
    assert calls == [("POST", "/api/sessions/s_1/questions/q_1/answer", {"text": "blue"})]
    refused = CliRunner().invoke(cli, ["questions", "answer", "q_2", "blue", *project])
    assert refused.exit_code == 2
    assert "error: the server refused (404)" in refused.output
    empty = CliRunner().invoke(cli, ["questions", "answer", "q_1", "  ", *project])
    assert empty.exit_code == 2
    assert "the answer is empty" in empty.output


def test_without_a_server_it_says_how_to_start_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["questions", "list", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "loomkin serve" in " ".join(result.output.split())


@pytest.mark.looptime
async def test_the_terminal_prompt_reads_a_line_and_is_cancelled_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        os.write(write_end, b"  blue  \n")
        assert await questions.prompt_answer("ann", "Which colour?", 30) == "blue"
        os.write(write_end, b"\n")
        assert await questions.prompt_answer("ann", "Which colour?", 30) is None
        # Nothing typed: the read is cancelled cleanly (no thread left blocked on stdin).
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await questions.prompt_answer("ann", "Which colour?", 5)
    os.close(write_end)


async def test_cluster_questions_are_asked_here_only_when_interactive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loomkin.cluster import QuestionAsk

    handlers: list[object] = []

    class Client:
        async def answer_questions(self, session_id: str, handler: object) -> None:
            assert session_id == "s_1"
            handlers.append(handler)

    client: Any = Client()
    await questions.answer_cluster_questions_here(client, "s_1", enabled=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    await questions.answer_cluster_questions_here(client, "s_1", enabled=True)
    assert handlers == []

    asked: list[tuple[str, str, float]] = []

    async def prompt(agent: str, question: str, seconds_left: float) -> str:
        asked.append((agent, question, seconds_left))
        return "blue"

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(questions, "prompt_answer", prompt)
    await questions.answer_cluster_questions_here(client, "s_1", enabled=True)
    (handler,) = handlers
    ask = QuestionAsk(question_id="q", agent="ann", team="t", question="Which?", seconds_left=9)
    assert await handler(ask) == "blue"  # type: ignore[operator]
    assert asked == [("ann", "Which?", 9)]
