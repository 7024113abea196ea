"""Child process of ``test_web_cluster_actions.py``: a cluster session with a speculation.

``python cluster_actions_server.py --bus URL --store URL --cluster NAME --project DIR
--port N --token T`` starts a worker (scripted agents that wait at a gate for good), opens a
session on it (ann on ``write the docs``, fay speculating on ``write the examples`` ahead
of it), serves the web app of the cluster as ``loomkin serve --bus --no-host`` does (a
runtime that only watches the shared store) and prints the page's URL for that session,
then runs until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.api import ClusterView, LaunchPolicy
from loomkin.api.server import serve
from loomkin.cluster import ClusterClient, HostOptions, Worker
from loomkin.core.chat import UserMessage
from loomkin.service import Loomkin
from loomkin.testing.models import FunctionModel, Reply
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

TTL = 2.0


async def wait_forever(request: ModelRequest) -> Reply:
    """Work on a task given without end; nothing to do otherwise."""
    if any(
        isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
        for m in request.messages
    ):
        await asyncio.Event().wait()
    return Reply(text="Nothing to do.")


def factory(_role: object, name: str) -> Model:
    return FunctionModel(wait_forever, name=f"scripted:{name}")


async def work(session: Session) -> None:
    if session.tasks():
        return
    await session.spawn_agent("ann", "coder")
    docs = await session.create_task("write the docs", assign_to="ann")
    examples = await session.create_task("write the examples", depends_on=(docs,))
    await session.spawn_agent("fay", "coder")
    await session.speculate(examples, "fay", [{"key": "docs_format", "value": "markdown"}])


async def main(args: argparse.Namespace) -> None:
    options = HostOptions(
        store_url=args.store,
        ttl_s=TTL,
        model_factory=factory,
        settings=SessionSettings(bootstrap_orienter=False),
        approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        prepare=work,
    )
    worker = Worker(args.bus, options, cluster=args.cluster, scan_s=0.2)
    await worker.start()
    try:
        async with (
            await ClusterClient.connect(
                args.bus, args.store, cluster=args.cluster, ttl_s=TTL
            ) as client,
            await Loomkin.open(args.store) as watcher,
        ):
            view = ClusterView(client, watcher, poll_s=0.2)
            async with view.watching():
                session_id, _ = await client.start_session(
                    str(args.project), "", title="docs", approve_all=True
                )
                await view.refresh()

                def ready(url: str) -> None:
                    print(f"{url}&session={session_id}", flush=True)

                await serve(
                    watcher,
                    port=args.port,
                    token=args.token,
                    launch=LaunchPolicy(roots=(args.project,)),
                    ready=ready,
                    cluster=view,
                )
    finally:
        await worker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--bus", "--store", "--cluster", "--token"):
        parser.add_argument(name, required=True)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parsed = parser.parse_args()
    parsed.project.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parsed))
