"""``loomkin serve``: the web app, on a session of this process or on a cluster (``--bus``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import click
from rich.markup import escape

from loomkin.cli.cluster import ClusterOptions, cluster_options, connect_client, hosting
from loomkin.cli.common import console, default_store, fail, run_command
from loomkin.cli.sessions import (
    PORT,
    ModelChoice,
    Target,
    api_key_env_option,
    check_pace,
    cluster_flags,
    launch_policy,
    listen_on,
    open_configured,
    project_dir,
    resume_configured,
    take_over_option,
    web_app,
)
from loomkin.errors import LoomkinError

__all__ = ["ServeOptions", "serve", "serve_until_stopped"]


@click.command()
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project to work on (with --demo: where to put the sample project).",
)
@click.option("--model", "model_spec", help="PROVIDER:MODEL for the agents.")
@click.option("--base-url", help="An OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...).")
@api_key_env_option
@click.option("--demo", is_flag=True, help="Serve the demo scenario (scripted model, no key).")
@click.option(
    "--pace",
    type=float,
    default=0.3,
    show_default=True,
    callback=check_pace,
    help="With --demo: real seconds each scripted model call takes (0 to 60).",
)
@click.option(
    "--no-auto-approve",
    is_flag=True,
    help="With --demo: answer the permission prompts yourself, in the page.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on (one that is not loopback exposes the server to the network).",
)
@click.option(
    "--port", type=PORT, default=8765, show_default=True, help="The port (0: any free port)."
)
@click.option(
    "--token",
    envvar="LOOMKIN_TOKEN",
    help="The token every request must carry (env LOOMKIN_TOKEN; default: a new random one, "
    "in the printed URL).",
)
@click.option(
    "--no-token",
    is_flag=True,
    help="Ask for no token (tests only): any local program or user could drive your agents.",
)
@click.option(
    "--allow-root",
    "allow_roots",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also let the page open sessions on projects under DIR (repeatable; --project is "
    "always allowed).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests addressed to host NAME (repeatable; localhost, 127.0.0.1, "
    "[::1] and --host always are).",
)
@click.option("--store", help="Event store URL (default: sqlite file in <project>/.loomkin).")
@click.option("--session", "session_id", help="Serve this stored session (resumed) instead.")
@take_over_option
@cluster_flags
def serve(
    project: Path | None,
    model_spec: str | None,
    base_url: str | None,
    api_key_env: str | None,
    demo: bool,
    pace: float,
    no_auto_approve: bool,
    host: str,
    port: int,
    token: str | None,
    no_token: bool,
    allow_roots: tuple[Path, ...],
    allow_hosts: tuple[str, ...],
    store: str | None,
    session_id: str | None,
    take_over: bool,
    bus: str | None,
    cluster: str | None,
    lease_ttl: float | None,
    no_host: bool,
) -> None:
    """Serve the web app: chat, live feed, agent cards, team tree, task graph, controls.

    With --bus it shows a cluster: every session of the shared store, the workers and where
    each session runs; controls and permission answers go to the worker holding a session.
    """
    from loomkin.api.access import check_token, host_names
    from loomkin.api.server import is_loopback

    if no_token and token:
        raise click.UsageError("--no-token and --token (or LOOMKIN_TOKEN) exclude each other")
    if no_token and not is_loopback(host):
        raise click.UsageError("--no-token is for loopback addresses only (tests)")
    on = cluster_options(
        store=store, bus=bus, cluster=cluster, lease_ttl=lease_ttl, no_host=no_host
    )
    if on is not None:
        _refuse_with_bus(demo=demo, session=session_id, base_url=base_url, api_key_env=api_key_env)
    elif project is None and not demo:
        raise click.UsageError("pass --project DIR (or --demo)")
    if take_over and session_id is None:
        raise click.UsageError("--take-over needs --session (a new session has no other writer)")
    if demo and session_id is not None:
        raise click.UsageError("--demo starts a new demo session; drop --session")
    try:
        if token is not None:
            check_token(token)
        host_names(host, allow_hosts)
    except LoomkinError as exc:
        fail(str(exc))
    root = project_dir(project, must_exist=not demo) if project is not None else None
    roots = tuple(project_dir(r, option="--allow-root") for r in allow_roots)
    options = ServeOptions(
        model=ModelChoice(spec=model_spec, base_url=base_url, api_key_env=api_key_env),
        demo=demo,
        pace=pace,
        auto_approve=not no_auto_approve,
        host=host,
        port=port,
        token=token,
        no_token=no_token,
        roots=roots,
        allow_hosts=allow_hosts,
        store=store,
        target=Target(session_id=session_id, take_over=take_over),
    )
    if on is not None:
        run_command(_serve_cluster(root, options, on))
        return
    run_command(serve_until_stopped(root, options))


def _refuse_with_bus(
    *, demo: bool, session: str | None, base_url: str | None, api_key_env: str | None
) -> None:
    """Options of the embedded ``serve`` that have no meaning on a cluster (yet)."""
    for flag, given in (
        ("--demo", demo),
        ("--session", session is not None),
        ("--base-url", base_url is not None),
        ("--api-key-env", api_key_env is not None),
    ):
        if given:
            raise click.UsageError(f"{flag} cannot be used with --bus")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    """The options of ``loomkin serve`` (one object: there are many)."""

    model: ModelChoice
    demo: bool
    pace: float
    auto_approve: bool
    host: str
    port: int
    token: str | None
    no_token: bool
    roots: tuple[Path, ...]
    allow_hosts: tuple[str, ...]
    store: str | None
    target: Target


async def serve_until_stopped(project: Path | None, options: ServeOptions) -> int:
    """The embedded ``serve``: a session of this process, served until Ctrl-C."""
    from loomkin.service import Loomkin

    # Listen first: a port in use must fail before a session is written to the store.
    sockets = listen_on(options.host, options.port)
    try:
        if options.demo:
            from loomkin.demo import copy_sample_project, start_demo

            root = await asyncio.to_thread(copy_sample_project, project)
            console.print(
                f"[bold yellow]SIMULATED[/] demo on a sample project at {escape(str(root))}"
            )
        else:
            assert project is not None
            root = project
        launch = launch_policy((root, *options.roots), options.model)
        async with await Loomkin.open(options.store or default_store(root)) as loomkin:
            if options.demo:
                session = await start_demo(
                    loomkin, project=root, auto_approve=options.auto_approve, pace_s=options.pace
                )
            elif options.target.session_id is not None:
                session = await resume_configured(loomkin, options.target, options.model)
            else:
                session = await open_configured(loomkin, root, options.model)
            async with web_app(
                loomkin,
                Path(session.project_root),
                session.session_id,
                host=options.host,
                sockets=sockets,
                launch=launch,
                token=options.token,
                no_token=options.no_token,
                allowed_hosts=options.allow_hosts,
            ):
                await asyncio.Event().wait()  # until Ctrl-C
    finally:
        for sock in sockets:
            sock.close()
    return 0


async def _serve_cluster(project: Path | None, options: ServeOptions, on: ClusterOptions) -> int:
    """Serve a cluster's sessions, workers and controls; a worker here too unless --no-host.

    The app's runtime only watches the shared store (it hosts nothing itself).
    """
    from loomkin.api import ClusterView
    from loomkin.service import Loomkin

    sockets = listen_on(options.host, options.port)  # a port in use fails before anything
    try:
        roots = (project, *options.roots) if project is not None else options.roots
        launch = launch_policy(roots, options.model)
        async with (
            hosting(on) as here,
            await connect_client(on) as client,
            await Loomkin.open(on.store) as watcher,
        ):
            view = ClusterView(client, watcher)
            async with view.watching():
                hosts = f"hosts agents too, as worker {here}" if here else "hosts no agents"
                console.print(
                    f"[bold]cluster[/] {escape(on.cluster)} on {escape(on.bus)}; "
                    f"this process {escape(hosts)}"
                )
                async with web_app(
                    watcher,
                    project,
                    "",
                    host=options.host,
                    sockets=sockets,
                    launch=launch,
                    token=options.token,
                    no_token=options.no_token,
                    allowed_hosts=options.allow_hosts,
                    cluster=view,
                ):
                    await asyncio.Event().wait()  # until Ctrl-C
    finally:
        for sock in sockets:
            sock.close()
    return 0
