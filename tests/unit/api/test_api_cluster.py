"""``GET /api/cluster`` without a cluster, and behind the same checks as every route.

With a cluster (``serve --bus``) it is tested on the real NATS server and Postgres in
``tests/cluster/test_run_and_serve.py``.
"""

from __future__ import annotations

import httpx

from loomkin.api import create_app
from loomkin.service import Loomkin

BASE = "http://127.0.0.1"
TOKEN = "cluster-token-" + "x" * 20


async def test_without_a_cluster_the_panel_is_told_there_is_none() -> None:
    async with await Loomkin.open("memory:") as loomkin:
        app = create_app(loomkin)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                shown = await client.get("/api/cluster")
    assert shown.status_code == 200
    assert shown.json() == {"cluster": None, "workers": [], "sessions": []}


async def test_the_cluster_route_needs_the_token_and_a_known_host() -> None:
    async with await Loomkin.open("memory:") as loomkin:
        app = create_app(loomkin, token=TOKEN)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                missing = await client.get("/api/cluster")
                right = await client.get(
                    "/api/cluster", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                rebound = await client.get(
                    "/api/cluster",
                    headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"},
                )
    assert missing.status_code == 401
    assert right.status_code == 200
    assert rebound.status_code == 421
