"""``loomkin team ...``: a running session's teams as the autoscaler sees them, and their bounds.

Like ``loomkin agent ...`` these talk to the running server of the project (its
``.loomkin/server.json``); they are the same calls as the HTTP routes and the facade's
``Session.team_scale`` / ``scale_team``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import click
from rich.markup import escape

from loomkin.cli.common import console, fail
from loomkin.cli.control import call, echo_json, read_server_info
from loomkin.errors import LoomkinError, UserError

__all__ = ["team_group"]


@click.group("team")
def team_group() -> None:
    """Show or bound how teams of a running session grow and shrink (the autoscaler)."""


@team_group.command("scale")
@click.argument("team", default="root")
@click.option("--min", "min_agents", type=click.IntRange(min=0), help="Keep at least N workers.")
@click.option("--max", "max_agents", type=click.IntRange(min=1), help="Grow to at most N.")
@click.option("--pin", type=click.IntRange(min=0), help="Exactly N worker agents.")
@click.option("--clear", is_flag=True, help="Drop the team's bounds ([autoscale] defaults).")
@click.option("--reason", default="", help="Why (shown in the activity feed).")
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project whose running server to talk to.",
)
@click.option("--session", "session_id", help="Session id (default: the served one).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def team_scale(
    team: str,
    min_agents: int | None,
    max_agents: int | None,
    pin: int | None,
    clear: bool,
    reason: str,
    project: Path,
    session_id: str | None,
    as_json: bool,
) -> None:
    """Show TEAM's size, backlog and bounds; with --min/--max/--pin/--clear, set them."""
    setting = clear or any(v is not None for v in (min_agents, max_agents, pin))
    try:
        if pin is not None and (min_agents is not None or max_agents is not None):
            raise UserError("--pin excludes --min and --max")
        info = read_server_info(project.resolve())
        sid = quote(session_id or info.session_id, safe="")
        path = f"/api/sessions/{sid}/teams/{quote(team, safe='')}/scale"
        body: dict[str, object] = {"clear": clear, "reason": reason}
        for key, value in (("min", min_agents), ("max", max_agents), ("pin", pin)):
            if value is not None:
                body[key] = value
        answer = call(info, "POST", path, body) if setting else call(info, "GET", path)
    except LoomkinError as exc:
        fail(str(exc))
    if as_json:
        echo_json(answer)
        return
    _show(answer)


def _show(a: dict[str, object]) -> None:
    bounds = (
        f"pinned at {a.get('pinned')}"
        if a.get("pinned") is not None
        else f"{a.get('min_agents')}–{a.get('max_agents')}"
    )
    ratio = a.get("ratio")
    shown = "∞" if ratio is None else f"{ratio:.2f}" if isinstance(ratio, float) else str(ratio)
    state = "on" if a.get("enabled") else "off ([autoscale] enabled = false)"
    lines = [
        f"team {a.get('team_name')}: autoscaler {state}",
        f"workers {a.get('workers')} (idle {a.get('idle')}, onboarding {a.get('onboarding')}), "
        f"bounds {bounds}",
        f"ready {a.get('ready')}, ratio {shown} (grows above {a.get('threshold')} for "
        f"{a.get('window_s')} s)",
        f"spawned {a.get('spawns')}, retired {a.get('retires')}",
    ]
    if a.get("hold"):
        lines.append(f"held: {a.get('hold')}")
    for line in lines:
        console.print(escape(line))
