"""``loomkin speculation ...``: speculative tasks of a running session, through its HTTP API.

Like ``loomkin agent ...`` these read ``.loomkin/server.json`` (written by ``loomkin serve``)
to find the server, so they work from the project directory:

    loomkin speculation list
    loomkin speculation start TASK --agent bob --assume signature='def parse(text) -> Ast'
    loomkin speculation start TASK --agent bob --assume-text "the parser still returns a list"
    loomkin speculation assume TASK --key signature --value '"def parse(text) -> Ast"'
    loomkin speculation cancel TASK
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import click

from loomkin.cli.common import fail
from loomkin.cli.control import call, echo_json, read_server_info
from loomkin.errors import LoomkinError, UserError

__all__ = ["speculation"]

_project = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project whose running server to talk to.",
)
_session = click.option("--session", "session_id", help="Session id (default: the served one).")


@click.group()
def speculation() -> None:
    """Start, list, extend or cancel speculative tasks (ahead of their blockers)."""


def _value(text: str) -> object:
    """A JSON value if ``text`` parses as one, else the text itself (a string)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assumption(pair: str) -> dict[str, object]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--assume wants KEY=VALUE, not {pair!r}")
    return {"key": key.strip(), "value": _value(value)}


def _request(
    project: Path, session_id: str | None, method: str, tail: str, body: object = None
) -> dict[str, object]:
    info = read_server_info(project.resolve())
    sid = quote(session_id or info.session_id, safe="")
    return call(info, method, f"/api/sessions/{sid}{tail}", body)  # type: ignore[arg-type]


@speculation.command("list")
@_project
@_session
def speculation_list(project: Path, session_id: str | None) -> None:
    """Every speculative task: assumptions, verdicts, waste; and the learnt hit rates."""
    try:
        echo_json(_request(project, session_id, "GET", "/speculations"))
    except LoomkinError as exc:
        fail(str(exc))


@speculation.command("start")
@click.argument("task_id")
@click.option("--agent", required=True, help="The agent that speculates (name or team/name).")
@click.option("--assume", "pairs", multiple=True, help="KEY=VALUE of the blocker's hand-off.")
@click.option("--assume-text", "texts", multiple=True, help="A prose assumption.")
@click.option("--on", "on_task", help="The blocker the assumptions are about (default: first).")
@_project
@_session
def speculation_start(
    task_id: str,
    agent: str,
    pairs: tuple[str, ...],
    texts: tuple[str, ...],
    on_task: str | None,
    project: Path,
    session_id: str | None,
) -> None:
    """Start TASK_ID on an agent before its blockers finish, on stated assumptions."""
    try:
        assumptions = [_assumption(p) for p in pairs] + [{"text": t} for t in texts]
        if not assumptions:
            raise UserError("give at least one --assume KEY=VALUE or --assume-text TEXT")
        if on_task:
            for a in assumptions:
                a["on_task"] = on_task
        body = {"agent": agent, "assumptions": assumptions}
        tail = f"/tasks/{quote(task_id, safe='')}/speculate"
        echo_json(_request(project, session_id, "POST", tail, body))
    except LoomkinError as exc:
        fail(str(exc))


@speculation.command("assume")
@click.argument("task_id")
@click.option("--key", default="", help="A key of the blocker's hand-off or milestone payload.")
@click.option("--value", default="null", help="The assumed value (JSON, or plain text).")
@click.option("--text", default="", help="A prose assumption instead of --key/--value.")
@_project
@_session
def speculation_assume(
    task_id: str, key: str, value: str, text: str, project: Path, session_id: str | None
) -> None:
    """Add an assumption to TASK_ID's running speculation."""
    try:
        body = {"text": text} if text else {"key": key, "value": _value(value)}
        tail = f"/tasks/{quote(task_id, safe='')}/assumptions"
        echo_json(_request(project, session_id, "POST", tail, body))
    except LoomkinError as exc:
        fail(str(exc))


@speculation.command("cancel")
@click.argument("task_id")
@_project
@_session
def speculation_cancel(task_id: str, project: Path, session_id: str | None) -> None:
    """Discard TASK_ID's running speculation; the task goes back to the queue."""
    try:
        tail = f"/tasks/{quote(task_id, safe='')}/speculation/cancel"
        echo_json(_request(project, session_id, "POST", tail, {}))
    except LoomkinError as exc:
        fail(str(exc))
