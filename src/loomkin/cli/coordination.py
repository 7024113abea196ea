"""``loomkin negotiation|rendezvous|budget ...``: through the running server's API.

Like ``loomkin agent ...``, these read ``.loomkin/server.json`` in the project to find the
running ``loomkin serve`` (or ``loomkin run --serve``), so they act on the live session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import click

from loomkin.cli.common import fail
from loomkin.cli.control import echo_json, project_option, session_option, session_request

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["budget_group", "negotiation_group", "rendezvous_group"]

_project = project_option
_session = session_option


def _request(
    project: Path, session_id: str | None, method: str, tail: str, body: dict[str, object] | None
) -> dict[str, object] | list[object]:
    answer = session_request(project, session_id, method, tail, body)
    result = answer.get("result") if set(answer) == {"result"} else answer
    return result if isinstance(result, list) else answer


@click.group("negotiation")
def negotiation_group() -> None:
    """List negotiations of assignments, or answer an agent's objection."""


@negotiation_group.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only negotiations still open.")
@_project
@_session
def negotiation_list(open_only: bool, project: Path, session_id: str | None) -> None:
    """Show every negotiation: task, assignee, status, objection, outcome."""
    rows = _request(
        project, session_id, "GET", f"/negotiations?open={str(open_only).lower()}", None
    )
    if not isinstance(rows, list) or not rows:
        click.echo("No negotiations.")
        return
    for row in rows:
        if not isinstance(row, dict):
            continue
        objection = ""
        if row.get("response"):
            who = f" → {row['suggested_name']}" if row.get("suggested_name") else ""
            objection = (
                f" | {row['response']} {row.get('counter_kind') or ''}{who}: {row['reason']}"
            )
        outcome = ""
        if row.get("decided_by"):
            moved = f" to {row['new_owner_name']}" if row.get("new_owner_name") else ""
            outcome = f" | {row['status']}{moved} by {row['decided_by']}"
        click.echo(
            f"[{row['status']}] {row['task_title']!r} ({row['task_id']}) → {row['agent_name']} "
            f"(assigned by {row['assigner']}){objection}{outcome}"
        )


@negotiation_group.command("resolve")
@click.argument("task_id")
@click.argument("resolution", type=click.Choice(["accept", "override", "reassign"]))
@click.option("--agent", help="For reassign: who gets the task (name or team/name).")
@click.option("--reason", default="", help="Why (the assignee reads it).")
@_project
@_session
def negotiation_resolve(
    task_id: str,
    resolution: str,
    agent: str | None,
    reason: str,
    project: Path,
    session_id: str | None,
) -> None:
    """Answer the objection on TASK_ID: accept it, override it, or reassign the task."""
    if resolution == "reassign" and not agent:
        fail("reassign needs --agent: the agent to give the task to")
    body: dict[str, object] = {"resolution": resolution, "reason": reason}
    if agent:
        body["agent"] = agent
    tail = f"/negotiations/{quote(task_id)}/resolve"
    answer = _request(project, session_id, "POST", tail, body)
    click.echo(answer.get("result") if isinstance(answer, dict) else answer)


@click.group("budget")
def budget_group() -> None:
    """Show the session's budgets, or raise them (and resume the agents they paused)."""


@budget_group.command("show")
@_project
@_session
def budget_show(project: Path, session_id: str | None) -> None:
    """Spend against the limits: the session, then each team (sub-teams included)."""
    rows = _request(project, session_id, "GET", "/budgets", None)
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            limit_usd = "none" if row["limit_usd"] is None else f"${row['limit_usd']:.2f}"
            limit_tokens = "none" if row["limit_tokens"] is None else str(row["limit_tokens"])
            click.echo(
                f"{row['scope']} {row['name']}: ${row['cost_usd']:.4f} of {limit_usd}, "
                f"{row['tokens']} tokens of {limit_tokens}"
            )


def _limit(value: str) -> float | None:
    if value.strip().lower() in ("none", "unlimited", "off"):
        return None
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number (or 'none')") from None
    if number < 0 or number != number:
        raise click.BadParameter(f"{value!r}: a budget cannot be negative")
    return number


@budget_group.command("set")
@click.option("--session-usd", help="Session cost limit in USD ('none' removes it).")
@click.option("--team-usd", help="Per-team cost limit in USD (a team includes its sub-teams).")
@click.option("--agent-usd", help="Per-agent cost limit in USD.")
@click.option("--session-tokens", help="Session token limit.")
@click.option("--team-tokens", help="Per-team token limit.")
@click.option("--agent-tokens", help="Per-agent token limit.")
@click.option("--no-resume", is_flag=True, help="Do not resume the agents a budget paused.")
@_project
@_session
def budget_set(
    session_usd: str | None,
    team_usd: str | None,
    agent_usd: str | None,
    session_tokens: str | None,
    team_tokens: str | None,
    agent_tokens: str | None,
    no_resume: bool,
    project: Path,
    session_id: str | None,
) -> None:
    """Change the limits given; agents a budget paused resume if the new limits allow."""
    given = {
        "session_usd": session_usd,
        "team_usd": team_usd,
        "agent_usd": agent_usd,
        "session_tokens": session_tokens,
        "team_tokens": team_tokens,
        "agent_tokens": agent_tokens,
    }
    body: dict[str, object] = {}
    for key, raw in given.items():
        if raw is None:
            continue
        value = _limit(raw)
        if key.endswith("_tokens") and value is not None:
            if value != int(value):
                raise click.BadParameter(f"--{key.replace('_', '-')}: tokens are whole numbers")
            body[key] = int(value)
        else:
            body[key] = value
    if not body:
        fail("give at least one limit, e.g. --session-usd 5 (see --help)")
    body["resume"] = not no_resume
    answer = _request(project, session_id, "POST", "/budgets", body)
    if not isinstance(answer, dict):
        echo_json({"result": answer})
        return
    limits = answer.get("limits")
    if isinstance(limits, dict):
        click.echo("Budgets now: " + ", ".join(f"{k}={v}" for k, v in limits.items()))
    for label, key in (("Resumed", "resumed"), ("Still over budget", "still_paused")):
        names = answer.get(key)
        if isinstance(names, list) and names:
            click.echo(f"{label}: {', '.join(str(n) for n in names)}")


@click.group("rendezvous")
def rendezvous_group() -> None:
    """List rendezvous points, open one, or add participants to one."""


@rendezvous_group.command("list")
@_project
@_session
def rendezvous_list(project: Path, session_id: str | None) -> None:
    """Show every rendezvous: status, who arrived, who is missing."""
    rows = _request(project, session_id, "GET", "/rendezvous", None)
    if not isinstance(rows, list) or not rows:
        click.echo("No rendezvous.")
        return
    for row in rows:
        if isinstance(row, dict):
            arrived = ", ".join(map(str, row.get("arrived") or [])) or "nobody"
            missing = ", ".join(map(str, row.get("missing") or [])) or "nobody"
            click.echo(
                f"[{row['status']}] {row['name']!r} ({row['action']}): arrived {arrived}; "
                f"missing {missing}"
            )


@rendezvous_group.command("create")
@click.argument("name")
@click.argument("participants", nargs=-1, required=True)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for everyone; then the creator and participants hear who is missing.",
)
@click.option("--message", default="", help="Sent to the participants when all arrive.")
@_project
@_session
def rendezvous_create(
    name: str,
    participants: tuple[str, ...],
    timeout_s: float,
    message: str,
    project: Path,
    session_id: str | None,
) -> None:
    """Open rendezvous NAME for PARTICIPANTS (names or team/name)."""
    if timeout_s <= 0:
        fail("--timeout must be a positive number of seconds")
    body: dict[str, object] = {
        "name": name,
        "participants": list(participants),
        "timeout_s": timeout_s,
        "message": message,
    }
    answer = _request(project, session_id, "POST", "/rendezvous", body)
    click.echo(f"Opened {name!r}" if isinstance(answer, dict) else str(answer))


@rendezvous_group.command("join")
@click.argument("name")
@click.argument("agents", nargs=-1, required=True)
@_project
@_session
def rendezvous_join(
    name: str, agents: tuple[str, ...], project: Path, session_id: str | None
) -> None:
    """Add AGENTS (from any team) to the open rendezvous NAME."""
    answer = _request(
        project, session_id, "POST", f"/rendezvous/{quote(name)}/join", {"agents": list(agents)}
    )
    added = answer.get("added") if isinstance(answer, dict) else None
    names = [str(a) for a in added] if isinstance(added, list) else []
    click.echo(f"Added: {', '.join(names) or 'nobody new'}")
