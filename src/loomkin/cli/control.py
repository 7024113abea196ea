"""``loomkin agent ...``: control the agents of a running session through its HTTP API.

A running ``loomkin serve`` (or ``loomkin run --serve``) writes ``.loomkin/server.json`` in
the project with its URL, its session and (when it has one) its token; these commands read
it, so ``loomkin agent pause alice`` just works from the project directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from loomkin.errors import NotFound, UserError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ServerInfo", "call", "read_server_info", "write_server_info"]

SERVER_FILE = Path(".loomkin") / "server.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    """What a running server wrote about itself."""

    url: str
    session_id: str
    token: str = ""


def write_server_info(project: Path, *, url: str, session_id: str, token: str | None) -> Path:
    """Record where the running server listens (readable by the owner only)."""
    path = project / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"url": url.split("/?")[0].rstrip("/"), "session_id": session_id, "token": token or ""}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return path


def read_server_info(project: Path) -> ServerInfo:
    """Read ``.loomkin/server.json``; a clear error if no server runs for this project."""
    path = project / SERVER_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(
            f"no running Loomkin server for {project} ({path} is missing); start one with "
            "`loomkin serve --project ...` or `loomkin run ... --serve`"
        ) from None
    except ValueError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc}); delete it and restart the server"
        ) from None
    if not isinstance(data, dict) or not {"url", "session_id"} <= set(data):
        raise UserError(f"{path} does not describe a server; delete it and restart the server")
    return ServerInfo(
        url=str(data["url"]), session_id=str(data["session_id"]), token=str(data.get("token", ""))
    )


def call(
    info: ServerInfo, method: str, path: str, body: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Call the server's API; HTTP errors become a ``UserError`` with the server's message."""
    import httpx  # only the agent commands need an HTTP client (~0.2 s to import)

    headers = {"Authorization": f"Bearer {info.token}"} if info.token else {}
    url = f"{info.url}{path}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise UserError(f"cannot reach the Loomkin server at {info.url}: {exc}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise UserError(f"the server refused ({response.status_code}): {detail}")
    result = response.json()
    return result if isinstance(result, dict) else {"result": result}


def agent_path(info: ServerInfo, session_id: str | None, name: str, action: str) -> str:
    """The API path of an agent action."""
    sid = session_id or info.session_id
    return f"/api/sessions/{sid}/agents/{name}/{action}"


def echo_json(data: Mapping[str, object]) -> None:
    """Print an API answer readably."""
    click.echo(json.dumps(data, indent=2, default=str))
