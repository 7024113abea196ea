from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from loomkin.api import create_app, is_loopback, serve
from loomkin.errors import ConfigError, UserError

from .conftest import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .conftest import Harness

TOKEN = "s3cret token/+"


@pytest.fixture
async def guarded(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(harness.loomkin, token=TOKEN)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5") as client:
            yield client


async def test_token_is_required_everywhere(guarded: httpx.AsyncClient, harness: Harness) -> None:
    paths = ["/", "/static/app.js", "/api/sessions", f"{harness.base}/events?follow=false"]
    for path in paths:
        missing = await guarded.get(path)
        assert missing.status_code == 401, path
        assert "token" in missing.json()["detail"]
        wrong = await guarded.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
        right = await guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200, path
    by_query = await guarded.get("/api/sessions", params={"token": TOKEN})
    assert by_query.status_code == 200
    wrong_query = await guarded.get("/api/sessions", params={"token": "x"})
    assert wrong_query.status_code == 401
    post = await guarded.post(f"{harness.base}/messages", json={"text": "hi"})
    assert post.status_code == 401


async def test_page_carries_the_token_to_its_assets(guarded: httpx.AsyncClient) -> None:
    page = await guarded.get("/", params={"token": TOKEN})
    assert page.status_code == 200
    assert "/static/app.js?token=s3cret%20token%2F%2B" in page.text


async def test_page_and_assets_without_token(harness: Harness) -> None:
    page = await harness.client.get("/")
    assert page.status_code == 200
    assert 'src="/static/app.js"' in page.text
    assert (await harness.client.get("/static/app.js")).status_code == 200
    assert (await harness.client.get("/static/app.css")).status_code == 200
    assert (await harness.client.get("/static/nope.js")).status_code == 404


async def test_without_token_only_loopback_host_names_are_answered(harness: Harness) -> None:
    for host in ("evil.example", "10.0.0.5:8765"):
        response = await harness.client.get("/api/sessions", headers={"host": host})
        assert response.status_code == 421, host
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
        response = await harness.client.get("/api/sessions", headers={"host": host})
        assert response.status_code == 200, host


async def test_state_changes_must_be_json(harness: Harness) -> None:
    url = f"{harness.base}/agents/concierge/cancel"
    form = await harness.client.post(url, content=b"a=1", headers={"content-type": "text/plain"})
    assert form.status_code == 415
    bare = await harness.client.post(url)
    assert bare.status_code == 415


async def test_openapi_documents_every_endpoint(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    paths = set(spec["paths"])
    assert {
        "/api/sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/summary",
        "/api/sessions/{session_id}/messages",
        "/api/sessions/{session_id}/feed",
        "/api/sessions/{session_id}/events",
        "/api/sessions/{session_id}/agents/{agent}/pause",
        "/api/sessions/{session_id}/agents/{agent}/resume",
        "/api/sessions/{session_id}/agents/{agent}/steer",
        "/api/sessions/{session_id}/agents/{agent}/cancel",
        "/api/sessions/{session_id}/agents/{agent}/inspect",
        "/api/sessions/{session_id}/permissions/{request_id}",
    } <= paths
    unknown = await harness.client.get("/api/nothing")
    assert unknown.status_code == 404
    assert unknown.json()["detail"]


async def test_empty_token_is_refused(harness: Harness) -> None:
    with pytest.raises(UserError, match="empty"):
        create_app(harness.loomkin, token="  ")


async def test_serve_refuses_other_hosts_without_token(harness: Harness) -> None:
    with pytest.raises(ConfigError, match="token"):
        await serve(harness.loomkin, host="0.0.0.0", port=0)
    with pytest.raises(ConfigError, match="port"):
        await serve(harness.loomkin, port=70000)


def test_is_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", "::"))
    assert BASE.startswith("http://127.")
