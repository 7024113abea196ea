"""``loomkin run``: a goal for a team of agents, here (embedded) or on a cluster (``--bus``)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from loomkin.cli.cluster import ON_CLUSTER, cluster_options, run_on_cluster
from loomkin.cli.common import console, default_store, run_command
from loomkin.cli.sessions import (
    PORT,
    ModelChoice,
    Target,
    allow_all,
    api_key_env_option,
    ask_in_terminal,
    cluster_flags,
    drive,
    launch_policy,
    listen_on,
    open_configured,
    otlp_option,
    project_dir,
    resume_configured,
    take_over_option,
    tracing,
    web_app,
)

__all__ = ["run", "run_goal"]


@click.command()
@click.argument("goal")
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project the agents work on (default: the current directory).",
)
@click.option("--model", "model_spec", help="PROVIDER:MODEL, e.g. openai:gpt-4.1.")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@api_key_env_option
@click.option("--yes", is_flag=True, help="Allow every write and shell call without asking.")
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
@click.option(
    "--serve",
    "serve_port",
    type=PORT,
    default=None,
    help="Also serve the web app on this port (0: any free port) for watching and steering; "
    "the printed URL carries its token.",
)
@otlp_option
@click.option("--session", "session_id", help="Give GOAL to this stored session instead.")
@take_over_option
@cluster_flags
def run(
    goal: str,
    project: Path,
    model_spec: str | None,
    base_url: str | None,
    api_key_env: str | None,
    yes: bool,
    store: str | None,
    serve_port: int | None,
    otlp: str | None,
    session_id: str | None,
    take_over: bool,
    bus: str | None,
    cluster: str | None,
    lease_ttl: float | None,
    no_host: bool,
) -> None:
    """Run GOAL with a team of agents on the project, showing live progress.

    With --bus the session runs on the least-loaded worker of a cluster (this process
    hosts agents too, unless --no-host).
    """
    if take_over and session_id is None:
        raise click.UsageError("--take-over needs --session (a new session has no other writer)")
    on = cluster_options(
        store=store, bus=bus, cluster=cluster, lease_ttl=lease_ttl, no_host=no_host
    )
    model = ModelChoice(spec=model_spec, base_url=base_url, api_key_env=api_key_env)
    if on is not None:
        _refuse_with_bus(
            base_url=base_url,
            api_key_env=api_key_env,
            serve=serve_port is not None,
            otlp=otlp,
            session=session_id,
        )
        run_command(
            run_on_cluster(goal, project_dir(project), on, model=model_spec, yes=yes),
            interrupted=ON_CLUSTER,
        )
        return
    target = Target(session_id=session_id, take_over=take_over)
    run_command(run_goal(goal, project_dir(project), model, yes, store, serve_port, otlp, target))


def _refuse_with_bus(
    *,
    base_url: str | None,
    api_key_env: str | None,
    serve: bool,
    otlp: str | None,
    session: str | None,
) -> None:
    """Options of the embedded ``run`` that a cluster's workers cannot honour (yet)."""
    for flag, given in (
        ("--base-url", base_url is not None),
        ("--api-key-env", api_key_env is not None),
        ("--serve", serve),
        ("--otlp", otlp is not None),
        ("--session", session is not None),
    ):
        if given:
            hint = " (serve the cluster with `loomkin serve --bus`)" if flag == "--serve" else ""
            raise click.UsageError(f"{flag} cannot be used with --bus{hint}")


async def run_goal(
    goal: str,
    project: Path,
    model: ModelChoice,
    yes: bool,
    store: str | None,
    serve_port: int | None = None,
    otlp: str | None = None,
    target: Target | None = None,
) -> int:
    """The embedded ``run``: a session in this process on ``store``, driven to idle."""
    from loomkin.service import Loomkin

    target = target or Target()
    # Listen first: a port in use must fail before a session is written to the store.
    sockets = listen_on("127.0.0.1", serve_port) if serve_port is not None else []
    try:
        async with await Loomkin.open(store or default_store(project)) as loomkin:
            after = 0
            if target.session_id is None:
                session = await open_configured(loomkin, project, model, title=goal[:80])
            else:
                after = loomkin.last_position
                session = await resume_configured(loomkin, target, model)
            session.set_permission_responder(allow_all if yes else ask_in_terminal())
            console.print(f"[bold]session[/] {session.session_id} on {escape(str(project))}")
            async with tracing(session, otlp):
                if not sockets:
                    return await drive(session, goal, after=after, ask_user=not yes)
                launch = launch_policy((project,), model)
                async with web_app(
                    loomkin,
                    Path(session.project_root),
                    session.session_id,
                    host="127.0.0.1",
                    sockets=sockets,
                    launch=launch,
                ):
                    return await drive(
                        session, goal, after=after, ask_user=not yes, hold_paused=True
                    )
    finally:
        for sock in sockets:
            sock.close()
