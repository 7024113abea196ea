"""``loomkin agent ...``: control the agents of a running session through its HTTP API.

A running ``loomkin serve`` (or ``loomkin run --serve``) writes ``.loomkin/server.json`` in
the project with its URL, its session and (when it has one) its token; these commands read
it, so ``loomkin agent pause alice`` just works from the project directory.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import click

from loomkin.cli.common import fail
from loomkin.errors import LoomkinError, NotFound, UserError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ServerInfo",
    "call",
    "project_option",
    "read_server_info",
    "remove_server_info",
    "session_option",
    "session_request",
    "write_server_info",
]

SERVER_FILE = Path(".loomkin") / "server.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    """What a running server wrote about itself."""

    url: str
    session_id: str
    token: str = ""


def write_server_info(project: Path, *, url: str, session_id: str, token: str | None) -> Path:
    """Record where the running server listens, readable by the owner only.

    The token must not leak through a link planted in the project (a repository can ship
    ``.loomkin`` as a symlink to a directory others can read): ``.loomkin`` must be a real
    directory, and the file is written through a descriptor of it with ``O_NOFOLLOW``, as a
    new ``0600`` file renamed into place (a reader never sees half of it).

    Raises:
        UserError: ``.loomkin`` or ``server.json`` is a symlink or not what it should be, or
            the file cannot be written.
    """
    path = project / SERVER_FILE
    data = {"url": url.split("/?")[0].rstrip("/"), "session_id": session_id, "token": token or ""}
    text = json.dumps(data).encode()
    try:
        folder = _open_state_dir(project)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    temp = f".server.json.{os.getpid()}.tmp"
    try:
        _refuse_link(folder, SERVER_FILE.name, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder)  # left by a process of the same id that was killed
        fd = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=folder,
        )
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, text)
        finally:
            os.close(fd)
        os.rename(temp, SERVER_FILE.name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(folder)
    return path


def remove_server_info(project: Path, *, session_id: str, url: str) -> None:
    """Remove ``.loomkin/server.json`` if it still describes this server (at shutdown)."""
    try:
        info = read_server_info(project)
    except UserError:
        return
    if info.session_id == session_id and info.url == url.split("/?")[0].rstrip("/"):
        with contextlib.suppress(OSError):
            (project / SERVER_FILE).unlink()


def _open_state_dir(project: Path) -> int:
    """Open ``<project>/.loomkin`` (created ``0700`` if missing), refusing a symlink."""
    state = project / SERVER_FILE.parent
    with contextlib.suppress(FileExistsError):
        state.mkdir(mode=0o700)
    try:
        return os.open(state, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and state.is_symlink():
            raise UserError(
                f"refusing to write the server's token into {state}: it is a symbolic link "
                "(to a directory others may read); remove it and start again"
            ) from None
        raise


def _refuse_link(folder: int, name: str, path: Path) -> None:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"refusing to write {path}: it is not a regular file; remove it")


def read_server_info(project: Path) -> ServerInfo:
    """Read ``.loomkin/server.json``; a clear error if no server runs for this project."""
    path = project / SERVER_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UserError(f"{path} is not a regular file; delete it and restart the server")
            raw = handle.read(_MAX_INFO + 1)
    except FileNotFoundError:
        raise NotFound(
            f"no running Loomkin server for {project} ({path} is missing); start one with "
            "`loomkin serve --project ...` or `loomkin run ... --serve`"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_INFO:
        raise UserError(f"{path} is too large to describe a server; delete it")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise UserError(
            f"{path} is not valid JSON ({reason}); delete it and restart the server"
        ) from None
    fields = ("url", "session_id", "token")
    if (
        not isinstance(data, dict)
        or not {"url", "session_id"} <= set(data)
        or not all(isinstance(data.get(key, ""), str) for key in fields)
        or not str(data["url"]).startswith(("http://", "https://"))
    ):
        raise UserError(f"{path} does not describe a server; delete it and restart the server")
    return ServerInfo(url=data["url"], session_id=data["session_id"], token=data.get("token", ""))


_MAX_INFO = 64 * 1024
"""Largest server.json read (it holds a URL, a session id and a token)."""


def call(
    info: ServerInfo, method: str, path: str, body: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Call the server's API; HTTP errors become a ``UserError`` with the server's message."""
    import httpx  # only the agent commands need an HTTP client (~0.2 s to import)

    headers = {"Authorization": f"Bearer {info.token}"} if info.token else {}
    url = f"{info.url}{path}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=30.0)
    except httpx.ConnectError as exc:  # nobody listens: the server died (kill -9, a crash)
        raise UserError(
            f"cannot reach the Loomkin server at {info.url}: {exc}; the server that wrote "
            f"{SERVER_FILE} is gone: serve its session again with `loomkin serve --project DIR "
            f"--session {info.session_id}`"
        ) from None
    except httpx.HTTPError as exc:
        raise UserError(f"cannot reach the Loomkin server at {info.url}: {exc}") from None
    if response.status_code >= 400:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        detail = answer.get("detail") if isinstance(answer, dict) else None
        detail = str(detail) if detail else response.text[:500]
        raise UserError(f"the server refused ({response.status_code}): {detail}")
    try:
        result = response.json()
    except ValueError:
        raise UserError(
            f"the server at {info.url} did not answer with JSON; is it a Loomkin server?"
        ) from None
    return result if isinstance(result, dict) else {"result": result}


project_option = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="The project whose running server to talk to.",
)
"""``--project``: where the running server's ``.loomkin/server.json`` is."""
session_option = click.option(
    "--session", "session_id", help="Session id (default: the served one)."
)
"""``--session``: which of the server's sessions (default: the one it serves)."""


def session_request(
    project: Path,
    session_id: str | None,
    method: str,
    tail: str,
    body: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Call ``/api/sessions/{id}{tail}`` on the project's running server, or exit with why.

    The session is ``session_id``, or the one the server serves.
    """
    try:
        info = read_server_info(project.resolve())
        sid = session_id or info.session_id
        if not sid:
            raise UserError(
                "the server serves no single session (it shows a cluster): pass --session ID"
            )
        return call(info, method, f"/api/sessions/{quote(sid, safe='')}{tail}", body)
    except LoomkinError as exc:
        fail(str(exc))


def agent_path(info: ServerInfo, session_id: str | None, name: str, action: str) -> str:
    """The API path of an agent action.

    Raises:
        UserError: no session given, and the server has no default one (``serve --bus``).
    """
    if not (session_id or info.session_id):
        raise UserError(
            "the server serves no single session (it shows a cluster): pass --session ID "
            "(`loomkin cluster status` lists them)"
        )
    sid = quote(session_id or info.session_id, safe="")
    return f"/api/sessions/{sid}/agents/{quote(name, safe='/')}/{action}"


def echo_json(data: Mapping[str, object]) -> None:
    """Print an API answer readably."""
    click.echo(json.dumps(data, indent=2, default=str))
