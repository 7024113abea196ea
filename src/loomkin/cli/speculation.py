"""``loomkin speculation ...``: speculative tasks of a running session, through its HTTP API.

Like ``loomkin agent ...`` these read ``.loomkin/server.json`` (written by ``loomkin serve``)
to find the server, so they work from the project directory:

    loomkin speculation list          # readable; --json for the API's answer
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
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
def speculation_list(project: Path, session_id: str | None, as_json: bool) -> None:
    """Every speculative task: assumptions, verdicts, waste; and the learnt hit rates."""
    try:
        listed = _request(project, session_id, "GET", "/speculations")
    except LoomkinError as exc:
        fail(str(exc))
    if as_json:
        echo_json(listed)
        return
    for line in speculation_lines(listed):
        click.echo(line)


_OUTCOMES = {
    "assumption_failed": "failed, discarded",
    "merge_conflict": "merge conflict, discarded",
    "cancelled": "cancelled",
    "preempted": "preempted, discarded",
    "crashed": "lost in a restart, discarded",
    "failed": "task failed, discarded",
}


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _obj(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _objs(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _work(d: dict[str, object], s: str, tokens: str, usd: str, calls: str) -> str:
    return (
        f"{_num(d.get(s)):.1f} s, {_num(d.get(tokens)):,.0f} tokens, "
        f"${_num(d.get(usd)):.4f}, {_num(d.get(calls)):.0f} model calls"
    )


def speculation_lines(listed: dict[str, object]) -> list[str]:
    """``GET /speculations`` as text: a block per speculation, then the session's figures."""
    lines: list[str] = []
    for spec in _objs(listed.get("speculations")):
        state = str(spec.get("state", ""))
        if state == "declined":
            continue
        outcome = _obj(spec.get("outcome"))
        label = {"running": "running", "merged": "held, merged"}.get(state, "discarded")
        if state == "discarded":
            label = _OUTCOMES.get(str(outcome.get("reason")), label)
        ahead = ", ".join(repr(t) for t in _strs(spec.get("blocker_titles")))
        lines.append(f"{spec.get('title')!r} [{label}] {spec.get('agent')} ahead of {ahead}")
        lines.extend(_assumption_lines(spec))
        stake = _obj(spec.get("at_stake"))
        if state == "running" and stake:
            lines.append("  at stake: " + _work(stake, "s", "tokens", "usd", "model_calls"))
        elif state == "discarded" and outcome:
            waste = _work(outcome, "wasted_s", "wasted_tokens", "wasted_usd", "wasted_model_calls")
            lines.append(f"  wasted: {waste}")
        elif state == "merged" and outcome:
            files = ", ".join(_strs(outcome.get("files"))) or "no files"
            lines.append(f"  merged: {files} (ran {_num(outcome.get('saved_s')):.1f} s ahead)")
    summary = _obj(listed.get("summary"))
    if not summary.get("started"):
        return lines or ["no speculation yet"]
    kinds = ("started", "held", "failed", "merged", "discarded", "running")
    lines += ["", ", ".join(f"{summary.get(k, 0)} {k}" for k in kinds)]
    waste = _work(summary, "wasted_s", "wasted_tokens", "wasted_usd", "wasted_model_calls")
    share = 100 * _num(summary.get("waste_fraction"))
    lines.append(f"waste: {waste} ({share:.1f} % of all tokens)")
    if summary.get("judge_calls"):
        lines.append(
            f"judge: {_num(summary.get('judge_calls')):.0f} model calls, "
            f"{_num(summary.get('judge_tokens')):,.0f} tokens, "
            f"${_num(summary.get('judge_usd')):.4f}"
        )
    rates = _obj(summary.get("hit_rates"))
    if rates:
        lines.append("hit rates: " + ", ".join(f"{k} {_num(p):.2f}" for k, p in rates.items()))
    return lines


def _assumption_lines(spec: dict[str, object]) -> list[str]:
    """One line per assumption: ✓ held, ✗ failed (with why), … not checked yet."""
    verdicts: dict[object, dict[str, object]] = {}
    for checked in _objs(spec.get("verdicts")):
        for verdict in _objs(checked.get("verdicts")):
            verdicts[verdict.get("assumption_id")] = verdict
    judged = {j.get("assumption_id"): j for j in _objs(spec.get("judgements"))}
    lines = []
    for a in _objs(spec.get("assumptions")):
        v = verdicts.get(a.get("assumption_id"))
        mark = "…" if v is None else "✓" if v.get("holds") else "✗"
        what = f"{a.get('key')} = {a.get('value')!r}" if a.get("key") else repr(a.get("text"))
        why = ""
        if v is not None and a.get("key") and not v.get("holds"):
            why = f" (actual {v.get('actual')!r})" if v.get("actual") is not None else ""
            why = why or f" ({v.get('reasoning')})"
        elif v is not None and not a.get("key"):
            j = judged.get(a.get("assumption_id"), {})
            call = f"{j.get('model')}, ${_num(j.get('cost_usd')):.4f}: " if j else ""
            why = f" (judge {call}{v.get('reasoning')})"
        lines.append(f"  {mark} {what}{why}")
    return lines


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
