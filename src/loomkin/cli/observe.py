"""Commands that look at a project or a stored session: ``mcp list``, ``trace export``, ``cost``.

Each imports the runtime only when it runs (the CLI starts at once), and goes through the
facade (:mod:`loomkin.service`) like every other command.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from loomkin.cli.common import console, run_command, stored_sessions
from loomkin.errors import UserError

if TYPE_CHECKING:
    from loomkin.service import AgentSpend, Loomkin, McpServerInfo, Spend, TeamSpend

__all__ = ["cost", "mcp", "trace"]

_project = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The project (its loomkin.toml and its store).",
)
_store = click.option(
    "--store", help="Event store URL (default: sqlite file in <project>/.loomkin)."
)
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


# -- mcp ---------------------------------------------------------------------------------------


@click.group()
def mcp() -> None:
    """MCP tool servers configured in loomkin.toml ([mcp.servers.NAME])."""


@mcp.command("list")
@_project
@_json
def mcp_list(project: Path, as_json: bool) -> None:
    """Start each configured MCP server, list its tools, and stop it again."""
    run_command(_mcp_list(project.resolve(), as_json))


async def _mcp_list(project: Path, as_json: bool) -> int:
    from loomkin.service import probe_mcp_servers
    from loomkin.service.config import load_config
    from loomkin.service.options import session_options

    settings = session_options(load_config(project)).settings
    if not settings.mcp_servers:
        if as_json:
            click.echo("[]")
        else:
            console.print(f"no MCP servers in {project / 'loomkin.toml'} ([mcp.servers.NAME])")
        return 0
    servers = await probe_mcp_servers(settings, project)
    if as_json:
        click.echo(json.dumps([asdict(s) for s in servers], indent=2))
    else:
        for server in servers:
            _show_server(server)
    return 1 if any(s.status == "failed" for s in servers) else 0


def _show_server(server: McpServerInfo) -> None:
    roles = f", roles: {', '.join(server.roles)}" if server.roles else ""
    console.print(
        f"[bold]{escape(server.name)}[/] ({server.transport}: {escape(server.target)}) "
        f"permission: {server.permission}{roles}"
    )
    if server.status == "failed":
        console.print(f"  [bold red]failed:[/] {escape(server.error)}")
        return
    for tool in server.tools:
        summary = tool.description.strip().splitlines()[0] if tool.description.strip() else ""
        console.print(f"  {escape(tool.name)}  [dim]{escape(summary)}[/]")
    if not server.tools:
        console.print("  (no tools)")


# -- trace -------------------------------------------------------------------------------------


@click.group()
def trace() -> None:
    """OpenTelemetry traces of sessions (spans built from the event log)."""


@trace.command("export")
@click.argument("session_id", metavar="SESSION", required=False)
@click.option(
    "--otlp", "otlp", metavar="URL", help="OTLP/HTTP collector, e.g. http://localhost:4318."
)
@click.option(
    "--file", "file", type=click.Path(dir_okay=False, path_type=Path), help="Write OTLP/JSON here."
)
@click.option(
    "--include-content",
    is_flag=True,
    help="Also export tool arguments and results and model answers (may hold secrets).",
)
@_project
@_store
def trace_export(
    session_id: str | None,
    otlp: str | None,
    file: Path | None,
    include_content: bool,
    project: Path,
    store: str | None,
) -> None:
    """Export SESSION (default: the newest) as spans: session → team → agent → calls.

    With neither --otlp nor --file, spans go where the standard OTEL_EXPORTER_OTLP_*
    variables say (default http://localhost:4318); headers, timeout and certificates always
    come from them.
    """
    path = file.resolve() if file is not None else None
    url = stored_sessions(project.resolve(), store)
    run_command(_trace_export(session_id, otlp, path, include_content, url))


async def _trace_export(
    session_id: str | None,
    otlp: str | None,
    file: Path | None,
    include_content: bool,
    store: str,
) -> int:
    from loomkin.service import Loomkin, export_trace

    async with await Loomkin.open(store) as loomkin:
        chosen = _session_or_newest(loomkin, session_id)
        summary = await export_trace(
            loomkin,
            chosen,
            otlp_endpoint=otlp,
            file=file,
            include_content=include_content,
        )
    console.print(
        f"trace {summary.trace_id}: {summary.spans} spans sent to "
        f"{', '.join(summary.destinations)}"
        + (f", {summary.unfinished} unfinished" if summary.unfinished else "")
    )
    if summary.failed:
        console.print(f"[bold red]{summary.failed} spans were not accepted[/] (see the log above)")
        return 1
    return 0


def _session_or_newest(loomkin: Loomkin, session_id: str | None) -> str:
    if session_id is not None:
        return loomkin.stored_session(session_id).session_id
    sessions = loomkin.sessions()
    if not sessions:
        raise UserError("no stored session in this store")
    return sessions[-1].session_id


# -- cost --------------------------------------------------------------------------------------


@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@_project
@_store
@_json
def cost(session_id: str | None, project: Path, store: str | None, as_json: bool) -> None:
    """What SESSION (default: the newest) spent: tokens and cost by agent and by team."""
    run_command(_cost(session_id, stored_sessions(project.resolve(), store), as_json))


async def _cost(session_id: str | None, store: str, as_json: bool) -> int:
    from loomkin.service import Loomkin

    async with await Loomkin.open(store) as loomkin:
        spend = await loomkin.spend(_session_or_newest(loomkin, session_id))
    if as_json:
        click.echo(json.dumps(asdict(spend), indent=2))
    else:
        _show_spend(spend)
    return 0


def _show_spend(spend: Spend) -> None:
    from rich.table import Table

    console.print(f"[bold]session[/] {spend.session_id}")
    agents = Table("agent", "team", "role", "calls", "tokens in", "tokens out", "cost (USD)")
    for a in spend.agents:
        agents.add_row(
            escape(a.name), escape(a.team_name), escape(a.role), str(a.model_calls), *_usage(a)
        )
    console.print(agents)
    teams = Table("team", "agents", "calls", "tokens in", "tokens out", "cost (USD)")
    for t in spend.teams:
        teams.add_row(escape(t.name), str(t.agents), str(t.model_calls), *_usage(t))
    total = _usage(spend)
    total[-1] = f"[bold]{total[-1]}[/]"
    teams.add_row("[bold]total[/]", str(len(spend.agents)), str(spend.model_calls), *total)
    console.print(teams)
    cache = Table("prompt cache", "tokens in", "cached", "uncached", "cache writes", "hit")
    for a in spend.agents:
        cache.add_row(escape(a.name), *_cache(a))
    cache.add_row("[bold]total[/]", *_cache(spend))
    console.print(cache)


def _usage(row: AgentSpend | TeamSpend | Spend) -> list[str]:
    """Token and cost cells: input, output, cost."""
    return [f"{row.input_tokens:,}", f"{row.output_tokens:,}", f"{row.cost_usd:.4f}"]


def _cache(row: AgentSpend | Spend) -> list[str]:
    """Input split by the prompt cache: read from it, neither, written to it; the hit rate."""
    hit = row.cached_input_tokens / row.input_tokens if row.input_tokens else 0.0
    return [
        f"{row.input_tokens:,}",
        f"{row.cached_input_tokens:,}",
        f"{row.uncached_input_tokens:,}",
        f"{row.cache_write_tokens:,}",
        f"{hit:.0%}",
    ]
