"""``loomkin questions list|answer``: questions agents asked the user, through the server's API.

Like ``loomkin agent ...``, these read ``.loomkin/server.json`` in the project to find the
running ``loomkin serve`` (or ``loomkin run --serve``), so they act on the live session. An
interactive ``loomkin run`` also asks each question at the terminal (:func:`ask_in_terminal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from typing import TYPE_CHECKING
from urllib.parse import quote

import click
from rich.markup import escape

from loomkin.cli.common import console, fail
from loomkin.cli.control import project_option, session_option, session_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from loomkin.cluster import ClusterClient, QuestionAsk
    from loomkin.service import QuestionResponder, Session, UserQuestion

__all__ = [
    "answer_cluster_questions_here",
    "ask_in_terminal",
    "prompt_answer",
    "questions_at_terminal",
    "questions_group",
]

_project = project_option
_session = session_option


def _request(
    project: Path, session_id: str | None, method: str, tail: str, body: dict[str, object] | None
) -> dict[str, object]:
    return session_request(project, session_id, method, f"/questions{tail}", body)


@click.group("questions")
def questions_group() -> None:
    """List the questions agents asked you, or answer one."""


@questions_group.command("list")
@_project
@_session
def questions_list(project: Path, session_id: str | None) -> None:
    """Show the open questions: id, asking agent, time left, text."""
    answer = _request(project, session_id, "GET", "", None)
    rows = answer.get("result")
    if not isinstance(rows, list) or not rows:
        click.echo("No open questions.")
        return
    for row in rows:
        if isinstance(row, dict):
            left = math.ceil(float(row.get("seconds_left") or 0))
            console.print(
                f"[bold]{escape(str(row['question_id']))}[/] {escape(str(row['agent']))} "
                f"(team {escape(str(row['team']))}, {left} s left): {escape(str(row['question']))}"
            )


@questions_group.command("answer")
@click.argument("question_id")
@click.argument("text")
@_project
@_session
def questions_answer(question_id: str, text: str, project: Path, session_id: str | None) -> None:
    """Answer question QUESTION_ID with TEXT; the asking agent gets it as a message."""
    if not text.strip():
        fail("the answer is empty; write what the agent should know")
    tail = f"/{quote(question_id, safe='')}/answer"
    answer = _request(project, session_id, "POST", tail, {"text": text})
    console.print(f"answered {escape(str(answer.get('agent')))}'s question {escape(question_id)}")


@contextlib.asynccontextmanager
async def questions_at_terminal(session: Session, *, enabled: bool) -> AsyncIterator[None]:
    """While the block runs, ask the session's questions to the user at this terminal.

    Nothing is asked unless ``enabled`` (not ``--yes``) and stdin is a terminal: the questions
    then wait for the web page, the API or their deadline.
    """
    responder = ask_in_terminal() if enabled else None
    if responder is None:
        yield
        return
    from loomkin.service import answer_user_questions

    asking = asyncio.create_task(answer_user_questions(session, responder))
    try:
        yield
    finally:
        asking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asking


async def answer_cluster_questions_here(
    client: ClusterClient, session_id: str, *, enabled: bool
) -> None:
    """Answer the questions a cluster session's agents ask the user at this terminal.

    Nothing is asked unless ``enabled`` (not ``--yes``) and stdin is a terminal: the questions
    then expire at their deadline, and the agents are told. The subscription ends with the
    client's connection.
    """
    if not enabled or not sys.stdin.isatty():
        return

    async def answer(ask: QuestionAsk) -> str | None:
        return await prompt_answer(ask.agent, ask.question, ask.seconds_left)

    await client.answer_questions(session_id, answer)


def ask_in_terminal() -> QuestionResponder | None:
    """A responder that asks each question at the terminal, one at a time.

    ``None`` without a terminal: the questions are left to their deadline (the agents are told).
    An empty answer also leaves the question to its deadline.
    """
    if not sys.stdin.isatty():
        return None
    lock = asyncio.Lock()

    async def ask(question: UserQuestion) -> str | None:
        async with lock:
            return await prompt_answer(question.agent, question.question, question.seconds_left)

    return ask


async def prompt_answer(agent: str, question: str, seconds_left: float) -> str | None:
    """Print the question and read one line from the terminal (``None``: an empty line).

    The line is read on the event loop, not in a thread: at the question's deadline the read
    is cancelled cleanly, and the command never waits on a prompt nobody answers.
    """
    console.print(
        f"[bold yellow]question[/] from {escape(agent)} ({math.ceil(seconds_left)} s to "
        f"answer; an empty line leaves it unanswered):\n{escape(question)}"
    )
    console.print("[bold]answer>[/] ", end="")
    try:
        text = await _read_line()
    except asyncio.CancelledError:
        console.print("\n[dim](no longer asked: answered elsewhere, or its deadline passed)[/]")
        raise
    return text.strip() or None


async def _read_line() -> str:
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    line: asyncio.Future[str] = loop.create_future()

    def readable() -> None:
        if not line.done():
            line.set_result(sys.stdin.readline())

    loop.add_reader(fd, readable)
    try:
        return await line
    finally:
        loop.remove_reader(fd)
