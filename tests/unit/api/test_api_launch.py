"""``POST /api/sessions``: only under the server's roots, only with its model servers, always
with the project's loomkin.toml (SECURITY.md, "The web server")."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import httpx
import pytest

from loomkin.api import LaunchPolicy, create_app, resolve_roots
from loomkin.errors import UserError
from loomkin.service import Loomkin
from loomkin.testing.internals import session_runtime
from loomkin.testing.wire import SSE, SSEReply, WireServer

from .conftest import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


class Server:
    """A web app on a fresh runtime, with the given launch policy."""

    def __init__(self, loomkin: Loomkin, client: httpx.AsyncClient) -> None:
        self.loomkin = loomkin
        self.client = client

    async def create(self, **body: object) -> httpx.Response:
        return await self.client.post("/api/sessions", json=body)


@pytest.fixture
async def roots(tmp_path: Path) -> tuple[Path, Path]:
    allowed = tmp_path / "work"
    (allowed / "svc").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    return allowed, outside


async def _server(launch: LaunchPolicy) -> AsyncIterator[Server]:
    async with await Loomkin.open("memory:") as loomkin:
        app = create_app(loomkin, launch=launch)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                yield Server(loomkin, client)


@pytest.fixture
async def server(roots: tuple[Path, Path]) -> AsyncIterator[Server]:
    allowed, _outside = roots
    launch = LaunchPolicy(roots=await asyncio.to_thread(resolve_roots, (allowed,)))
    async for running in _server(launch):
        yield running


# -- roots -----------------------------------------------------------------------------------


async def test_projects_under_a_root_are_opened(server: Server, roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    for project in (allowed / "svc", allowed, allowed / "svc" / ".." / "svc"):
        response = await server.create(project=str(project), model="ollama:llama3")
        assert response.status_code == 201, response.text
        assert response.json()["project_root"] == str(project.resolve())


@pytest.mark.parametrize(
    "where",
    ["/", "/etc", "~", "{outside}", "{allowed}/..", "{allowed}/svc/../../elsewhere", "{link}"],
)
async def test_projects_outside_every_root_are_refused(
    server: Server, roots: tuple[Path, Path], where: str
) -> None:
    allowed, outside = roots
    link = allowed / "escape"
    if not link.exists():
        link.symlink_to(outside)  # inside the root by name, outside once resolved
    project = where.format(allowed=allowed, outside=outside, link=link)
    response = await server.create(project=project, model="ollama:llama3")
    assert response.status_code in (403, 422), response.text
    if project.startswith("/"):
        assert response.status_code == 403
        assert "--allow-root" in response.json()["detail"]
    assert server.loomkin.sessions() == []


@pytest.mark.parametrize(
    "project",
    ["relative/path", "svc", "/tmp/a\x00b", "/" + "a" * 5000, "/x/\x1b[31m", "/" + "a/" * 2100],
)
async def test_bad_paths_are_4xx(server: Server, project: str) -> None:
    response = await server.create(project=project, model="ollama:llama3")
    assert 400 <= response.status_code < 500, (project[:50], response.status_code)
    assert response.json()["detail"]
    assert len(response.text) < 2000  # a 5,000-character path is not echoed whole


async def test_an_over_long_name_under_a_root_is_a_422(
    server: Server, roots: tuple[Path, Path]
) -> None:
    allowed, _ = roots
    response = await server.create(project=str(allowed / ("n" * 300)), model="ollama:llama3")
    assert response.status_code == 422, response.text
    assert "too long" in response.json()["detail"]


async def test_a_server_without_roots_opens_no_session() -> None:
    async for server in _server(LaunchPolicy()):
        response = await server.create(project="/tmp", model="ollama:llama3")
        assert response.status_code == 403
        assert "--allow-root" in response.json()["detail"]


def test_resolve_roots(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    resolved = resolve_roots((tmp_path / "a", tmp_path / "link"))
    assert resolved == ((tmp_path / "a").resolve(),)
    with pytest.raises(UserError, match="not a directory"):
        resolve_roots((tmp_path / "missing",))


# -- base_url --------------------------------------------------------------------------------


async def test_a_base_url_from_http_is_refused(server: Server, roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    for url in ("http://127.0.0.1:9/v1", "https://attacker.example/v1", "not a url"):
        response = await server.create(project=str(allowed), model="openai:gpt-4.1", base_url=url)
        assert response.status_code == 403, url
        assert "--base-url" in response.json()["detail"]
    assert server.loomkin.sessions() == []


def _answer() -> SSEReply:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hello"}, "finish_reason": "stop"}],
    }
    return SSEReply(events=(SSE(json.dumps(chunk)), SSE("[DONE]")))


async def test_the_servers_own_base_url_is_accepted_with_its_key(
    roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("GPU_BOX_KEY", "sk-gpu")
    allowed, _ = roots
    async with WireServer(lambda _request: _answer()) as wire:
        url = wire.base_url + "/v1"
        launch = LaunchPolicy(roots=(allowed.resolve(),), base_url=url, api_key_env="GPU_BOX_KEY")
        async for server in _server(launch):
            response = await server.create(
                project=str(allowed), model="openai-compatible:qwen", base_url=url + "/"
            )
            assert response.status_code == 201, response.text
            session = server.loomkin.session(response.json()["session_id"])
            await session.send("hi")
            await session.wait_idle()
    assert [r.headers["authorization"] for r in wire.requests][:1] == ["Bearer sk-gpu"]


async def test_openai_over_http_never_sends_the_openai_key_elsewhere(
    roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demonstrated leak: a local server received ``Bearer <OPENAI_API_KEY>``."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    allowed, _ = roots
    async with WireServer(lambda _request: _answer()) as wire:
        url = wire.base_url + "/v1"
        async for server in _server(LaunchPolicy(roots=(allowed.resolve(),), base_url=url)):
            response = await server.create(project=str(allowed), model="openai:x", base_url=url)
            assert response.status_code == 201, response.text
            session = server.loomkin.session(response.json()["session_id"])
            await session.send("hi")
            await session.wait_idle()
    assert wire.requests
    assert all("sk-openai-secret" not in json.dumps(r.headers) for r in wire.requests)


# -- loomkin.toml ----------------------------------------------------------------------------


async def test_a_session_opened_over_http_obeys_the_projects_loomkin_toml(
    server: Server, roots: tuple[Path, Path]
) -> None:
    allowed, _ = roots
    (allowed / "svc" / "loomkin.toml").write_text(
        '[model]\ndefault = "vllm:qwen"\n\n[permissions]\ndeny = ["shell"]\n\n'
        "[limits]\nmax_iterations = 4\n\n[budgets]\nsession_usd = 0.5\n"
    )
    response = await server.create(project=str(allowed / "svc"))  # no model: the file's
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["model"] == "vllm:qwen"
    runtime = session_runtime(server.loomkin.session(created["session_id"]))
    assert runtime.ctx.policy.deny == {"shell"}
    assert runtime.settings.max_iterations == 4
    assert runtime.settings.budgets.session_usd == 0.5


async def test_a_broken_loomkin_toml_is_a_422_naming_the_key(
    server: Server, roots: tuple[Path, Path]
) -> None:
    allowed, _ = roots
    (allowed / "svc" / "loomkin.toml").write_text('[permissions]\ndeny = ["shel"]\n')
    response = await server.create(project=str(allowed / "svc"), model="ollama:llama3")
    assert response.status_code == 422
    assert "permissions.deny" in response.json()["detail"]


async def test_without_a_model_anywhere_the_server_model_is_used_or_the_error_says_how(
    roots: tuple[Path, Path],
) -> None:
    allowed, _ = roots
    async for server in _server(LaunchPolicy(roots=(allowed.resolve(),))):
        response = await server.create(project=str(allowed))
        assert response.status_code == 422
        assert "no model given" in response.json()["detail"]
    async for server in _server(LaunchPolicy(roots=(allowed.resolve(),), model="ollama:x")):
        response = await server.create(project=str(allowed))
        assert response.status_code == 201
        assert response.json()["model"] == "ollama:x"
