"""Who may use the web app: the token, the Host allowlist, the Origin check (SECURITY.md)."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import httpx
import pytest

from loomkin.api import create_app, generate_token, is_loopback, listen, serve
from loomkin.api.access import MAX_BODY, AccessMiddleware, AccessPolicy, check_token, host_names
from loomkin.core.events import UserMessagePosted
from loomkin.errors import ConfigError

from .conftest import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Message

    from .conftest import Harness

TOKEN = "s3cret token/+"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SAME_ORIGIN = {"Origin": "http://127.0.0.1"}


@pytest.fixture
async def guarded(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The harness's runtime behind a token, addressed as http://127.0.0.1."""
    app = create_app(harness.loomkin, token=TOKEN)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


# -- the token -------------------------------------------------------------------------------


async def test_every_api_request_needs_the_token(
    guarded: httpx.AsyncClient, harness: Harness
) -> None:
    paths = ["/api/sessions", f"{harness.base}/events?follow=false", "/openapi.json"]
    for path in paths:
        missing = await guarded.get(path)
        assert missing.status_code == 401, path
        assert "token" in missing.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await guarded.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
        other_scheme = await guarded.get(path, headers={"Authorization": f"Basic {TOKEN}"})
        assert other_scheme.status_code == 401, path
        right = await guarded.get(path, headers=BEARER)
        assert right.status_code == 200, path
    post = await guarded.post(f"{harness.base}/messages", json={"text": "hi"})
    assert post.status_code == 401


async def test_token_in_the_query_opens_reads_but_never_changes_state(
    guarded: httpx.AsyncClient, harness: Harness
) -> None:
    # EventSource cannot set headers, and the printed URL opens the page: GET takes ?token=.
    by_query = await guarded.get("/api/sessions", params={"token": TOKEN})
    assert by_query.status_code == 200
    events = await guarded.get(f"{harness.base}/events", params={"token": TOKEN, "follow": False})
    assert events.status_code == 200
    assert (await guarded.get("/api/sessions", params={"token": "x"})).status_code == 401
    twice = await guarded.get("/api/sessions", params=[("token", TOKEN), ("token", TOKEN)])
    assert twice.status_code == 401
    # A wrong header is not rescued by a right query.
    mixed = await guarded.get(
        "/api/sessions", params={"token": TOKEN}, headers={"Authorization": "Bearer no"}
    )
    assert mixed.status_code == 401
    # State changes take the token from the header only, even from the page's own origin.
    url = f"{harness.base}/agents/concierge/cancel"
    in_query = await guarded.post(url, params={"token": TOKEN}, json={}, headers=SAME_ORIGIN)
    assert in_query.status_code == 401
    assert "Authorization header" in in_query.json()["detail"]
    in_header = await guarded.post(url, json={}, headers={**BEARER, **SAME_ORIGIN})
    assert in_header.status_code == 202, in_header.text


async def test_the_page_and_its_assets_need_no_token_and_never_contain_it(
    guarded: httpx.AsyncClient,
) -> None:
    # The page strips ?token= from its address; a reload must still load it.
    for path in ("/", "/static/app.js", "/static/app.css"):
        response = await guarded.get(path)
        assert response.status_code == 200, path
    page = await guarded.get("/", params={"token": TOKEN})
    assert TOKEN not in page.text
    assert "s3cret" not in page.text
    assert (await guarded.get("/static/nope.js")).status_code == 404


def test_tokens() -> None:
    assert len(generate_token()) >= 40
    assert generate_token() != generate_token()
    for bad in ("", "   ", " padded", "naïve", "tab\there"):
        with pytest.raises(ConfigError, match="token"):
            check_token(bad)
    assert check_token(TOKEN) == TOKEN


async def test_an_unusable_token_is_refused(harness: Harness) -> None:
    with pytest.raises(ConfigError, match="empty"):
        create_app(harness.loomkin, token="  ")


# -- the Host header -------------------------------------------------------------------------

REFUSED_HOSTS = (
    "127.attacker.com",
    "127.0.0.1.attacker.com",
    "localhost.attacker.com",
    "attacker.com",
    "localhost.",
    "127.0.0.2",
    "0.0.0.0:8765",
    "[::]:8765",
    "10.0.0.5:8765",
    "::1",
    "localhost:99999",
    "localhost:http",
    "localhost:8765:1",
    "[::1",
    ":8765",
    "",
)
ANSWERED_HOSTS = ("localhost", "localhost:8765", "LOCALHOST:1", "127.0.0.1", "[::1]:8765")


@pytest.mark.parametrize("host", REFUSED_HOSTS)
async def test_a_host_name_not_on_the_list_is_refused(
    guarded: httpx.AsyncClient, harness: Harness, host: str
) -> None:
    # With the token too: the allowlist stands on its own, a second wall behind it.
    response = await guarded.get("/api/sessions", headers={"host": host, **BEARER})
    assert response.status_code == 421, host
    tokenless = await harness.client.get("/api/sessions", headers={"host": host})
    assert tokenless.status_code == 421, host
    page = await harness.client.get("/", headers={"host": host})
    assert page.status_code == 421, host


@pytest.mark.parametrize("host", ANSWERED_HOSTS)
async def test_loopback_names_are_answered_with_any_port(
    guarded: httpx.AsyncClient, host: str
) -> None:
    # The port is not compared: `ssh -L 9000:localhost:8765` makes it 9000.
    response = await guarded.get("/api/sessions", headers={"host": host, **BEARER})
    assert response.status_code == 200, host


async def test_a_dns_rebinding_page_is_refused(harness: Harness) -> None:
    """A page on rebind.attacker.com whose name now resolves to 127.0.0.1.

    To the browser the requests are same-origin, so it sends them with its own name as
    Host and Origin, and reads the answers; the server must not give any.
    """
    attacker = {"host": "rebind.attacker.com:8765", "origin": "http://rebind.attacker.com:8765"}
    reads = await harness.client.get("/api/sessions", headers=attacker)
    assert reads.status_code == 421
    stream = await harness.client.get(f"{harness.base}/events?follow=false", headers=attacker)
    assert stream.status_code == 421
    drives = await harness.client.post(
        f"{harness.base}/messages", json={"text": "rm -rf ~"}, headers=attacker
    )
    assert drives.status_code == 421
    assert not any(m.text == "rm -rf ~" for m in await _user_messages(harness))


async def _user_messages(harness: Harness) -> list[UserMessagePosted]:
    events = await harness.loomkin.history(harness.session.session_id)
    return [e.event for e in events if isinstance(e.event, UserMessagePosted)]


async def test_a_header_that_comes_twice_is_refused(harness: Harness) -> None:
    for name in ("host", "origin", "authorization"):
        headers = [(name, "127.0.0.1"), (name, "127.0.0.1")]
        if name != "host":
            headers.append(("host", "127.0.0.1"))
        response = await harness.client.get("/api/sessions", headers=headers)
        assert response.status_code == 400, name


async def test_the_bound_name_and_allowed_names_are_answered(harness: Harness) -> None:
    app = create_app(harness.loomkin, token=TOKEN, bound="box.lan", allowed_hosts=["Dev.Example"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=BEARER) as client:
        for host in ("box.lan", "box.lan:8765", "dev.example", "localhost"):
            assert (await client.get("/api/sessions", headers={"host": host})).status_code == 200
        for host in ("box.lan.attacker.com", "other.lan"):
            assert (await client.get("/api/sessions", headers={"host": host})).status_code == 421


def test_host_names() -> None:
    assert host_names("127.0.0.1") == {"localhost", "127.0.0.1", "[::1]"}
    assert "[::1]" in host_names("::1")
    assert host_names("0.0.0.0") == host_names("::") == host_names("") == host_names("127.0.0.1")
    assert "box" in host_names("127.0.0.1", ["BOX"])
    assert "[fe80::1]" in host_names("127.0.0.1", ["fe80::1"])
    for bad in ("bad name", "x/y", "0.0.0.0", "a..b", "-x.com"):
        with pytest.raises(ConfigError, match="allow-host"):
            host_names("127.0.0.1", [bad])


# -- the Origin header -----------------------------------------------------------------------

FOREIGN_ORIGINS = (
    "http://attacker.com",
    "http://127.0.0.1:3000",  # another local server's page
    "https://127.0.0.1",  # same name and no port, another scheme
    "http://localhost",  # another name for the same server is another origin
    "null",  # sandboxed iframes, file:// pages
    "http://127.0.0.1/path",
    "http://user@127.0.0.1",
    "garbage",
)


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
async def test_a_foreign_origin_is_refused(
    guarded: httpx.AsyncClient, harness: Harness, origin: str
) -> None:
    url = f"{harness.base}/agents/concierge/cancel"
    headers = {**BEARER, "origin": origin}
    assert (await guarded.post(url, json={}, headers=headers)).status_code == 403, origin
    assert (await guarded.get("/api/sessions", headers=headers)).status_code == 403, origin
    tokenless = await harness.client.post(url, json={}, headers={"origin": origin})
    assert tokenless.status_code == 403, origin


async def test_the_pages_own_origin_is_accepted(
    guarded: httpx.AsyncClient, harness: Harness
) -> None:
    url = f"{harness.base}/agents/concierge/pause"
    for host, origin in (
        ("127.0.0.1", "http://127.0.0.1"),
        ("127.0.0.1:80", "http://127.0.0.1"),
        ("localhost:9000", "http://LOCALHOST:9000"),
        ("[::1]:8765", "http://[::1]:8765"),
    ):
        headers = {**BEARER, "host": host, "origin": origin}
        response = await guarded.post(url, json={"mode": "at_boundary"}, headers=headers)
        assert response.status_code == 202, (host, origin, response.text)


async def test_a_state_change_without_origin_needs_the_token_in_the_header(
    guarded: httpx.AsyncClient, harness: Harness
) -> None:
    # Browsers send Origin on every POST; a request without it is a program (curl, the CLI).
    url = f"{harness.base}/agents/concierge/pause"
    assert (await guarded.post(url, json={}, headers=BEARER)).status_code == 202
    assert (await guarded.post(url, json={}, params={"token": TOKEN})).status_code == 401
    assert (await guarded.post(url, json={})).status_code == 401


async def test_without_a_token_programs_may_post_and_other_sites_may_not(
    harness: Harness,
) -> None:
    url = f"{harness.base}/agents/concierge/pause"
    assert (await harness.client.post(url, json={})).status_code == 202
    assert (await harness.client.post(url, json={}, headers=SAME_ORIGIN)).status_code == 202
    foreign = {"origin": "http://attacker.com"}
    assert (await harness.client.post(url, json={}, headers=foreign)).status_code == 403


# -- bodies ----------------------------------------------------------------------------------


async def test_state_changes_must_be_json(harness: Harness) -> None:
    url = f"{harness.base}/agents/concierge/cancel"
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        form = await harness.client.post(url, content=b"a=1", headers={"content-type": media})
        assert form.status_code == 415, media
    bare = await harness.client.post(url)
    assert bare.status_code == 415


async def test_a_body_over_the_limit_is_refused(harness: Harness) -> None:
    url = f"{harness.base}/messages"
    big = b'{"text": "' + b"x" * MAX_BODY + b'"}'
    declared = await harness.client.post(
        url, content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await harness.client.post(
        url, content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert all(len(m.text) < MAX_BODY for m in await _user_messages(harness))


async def test_websockets_are_checked_too() -> None:
    reached: list[str] = []

    async def app(scope: object, receive: object, send: object) -> None:
        reached.append("app")

    middleware = AccessMiddleware(app, policy=AccessPolicy(token=TOKEN))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    scope = {
        "type": "websocket",
        "path": "/ws",
        "query_string": b"",
        "headers": [(b"host", b"127.attacker.com")],
    }
    await middleware(scope, receive, send)
    assert sent[0]["type"] == "websocket.close"
    assert reached == []
    scope["headers"] = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {TOKEN}".encode())]
    await middleware(scope, receive, send)
    assert reached == ["app"]


# -- the server ------------------------------------------------------------------------------


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


async def test_serve_refuses_what_it_cannot_do_safely(harness: Harness) -> None:
    with pytest.raises(ConfigError, match="without a token"):
        await serve(harness.loomkin, host="0.0.0.0", port=0, no_token=True)
    with pytest.raises(ConfigError, match="either"):
        await serve(harness.loomkin, port=0, token=TOKEN, no_token=True)
    with pytest.raises(ConfigError, match="port"):
        await serve(harness.loomkin, port=70000)


def test_listen_names_the_problem() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigError, match=rf"cannot listen on '127\.0\.0\.1' port {port}: .*in use"
        ):
            listen("127.0.0.1", port)
    with pytest.raises(ConfigError, match=r"cannot listen on '203\.0\.113\.7'"):
        listen("203.0.113.7", 0)  # TEST-NET-3: no interface of this machine has it
    with pytest.raises(ConfigError, match="cannot listen"):
        listen("x" * 300, 0)  # a label too long: refused before any lookup
    with pytest.raises(ConfigError, match="cannot listen"):
        listen("local\x00host", 0)
    sockets = listen("localhost", 0)
    try:
        assert len({s.getsockname()[1] for s in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()


async def test_a_real_server_prints_a_url_with_a_new_token(harness: Harness) -> None:
    """Over TCP: the URL carries a generated token; the server enforces it."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(harness.loomkin, port=0, ready=ready.set_result))
    try:
        url = await asyncio.wait_for(ready, 30)
        base, _, token = url.partition("/?token=")
        assert base.startswith("http://127.0.0.1:")
        assert len(token) >= 40
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/api/sessions")).status_code == 401
            assert (await client.get(f"/api/sessions?token={token}")).status_code == 200
            rebound = await client.get(
                f"/api/sessions?token={token}", headers={"host": "127.attacker.com"}
            )
            assert rebound.status_code == 421
            assert (await client.get("/")).status_code == 200
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_is_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", "::", ""))
    assert not is_loopback("127.attacker.com")
