"""One MCP server's connection: started with the session, watched, restarted, stopped.

How this works and why:

* The connection lives in one task, supervised by the session's timer
  :class:`~loomkin.runtime.supervisor.Supervisor` (it must not count as work when the
  session waits for its agents to be idle). The task enters the SDK's ``Client`` (which
  starts a stdio server as a child process, or connects over streamable HTTP), lists the
  tools, then waits until the connection is lost or closed. The SDK runs on anyio, whose
  scopes must be left by the task that entered them: calls from agents go through the
  client from their own tasks, but entering and leaving stay in this one.
* A lost connection is noticed three ways: the server's stream ends (a stdio server exited:
  the transport is wrapped to tell), the transport reports an error (an HTTP server went
  away), or a call fails with "connection closed". The task then raises, and the supervisor
  starts it again (after a growing pause; it gives up after too many crashes in a window,
  and the tools then answer that the server is down).
* The first start is different: its failure is not retried but reported to
  :meth:`McpConnection.start`, which raises :class:`~loomkin.errors.McpServerFailed` naming
  the server, what failed and the end of what a stdio server wrote on stderr.
* A server that announces a change of its tool list (``notifications/tools/list_changed``)
  has its list fetched again; agents spawned afterwards get the new tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal, Self, cast

from loomkin.errors import McpServerFailed, ToolError
from loomkin.tools.mcp.results import render_result
from loomkin.tools.mcp.spec import McpPermission, McpServerSpec, StdioTransport
from loomkin.tools.mcp.tool import McpTool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from types import TracebackType
    from typing import TextIO

    from mcp import Client
    from mcp.client._transport import TransportStreams  # not re-exported (SDK 2.3)
    from mcp.client.session import IncomingMessage
    from mcp.shared._stream_protocols import ReadStream
    from mcp.shared.message import SessionMessage

    from loomkin.core.events.base import JSON
    from loomkin.runtime.supervisor import Supervisor

__all__ = ["McpConnection", "McpServerState", "ServerStatus"]

logger = logging.getLogger(__name__)

ServerStatus = Literal["starting", "running", "restarting", "failed", "stopped"]
"""Where a server stands: ``failed`` once it could not start or was given up on."""

_STDERR_TAIL = 1500
"""Characters of a stdio server's stderr quoted when it fails."""
_MAX_BACKOFF_STEPS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerState:
    """One server as ``loomkin mcp list`` and the HTTP API show it."""

    name: str
    kind: Literal["stdio", "http"]
    target: str
    """The command line (stdio) or the URL (http)."""
    permission: McpPermission
    roles: tuple[str, ...]
    status: ServerStatus
    restarts: int
    """Times it was started again after it stopped."""
    error: str
    """Why it last failed or stopped ("" when it never did)."""
    tools: tuple[tuple[str, str], ...]
    """``(name, description)`` of each tool, names as agents call them (``SERVER.tool``)."""


class McpConnection:
    """The connection to one MCP server (see the module docstring).

    Args:
        spec: The server's configuration.
        project_root: The working directory of a stdio server without its own ``cwd``.
        supervisor: Owns the connection's task.
        key: The task's key in the supervisor (unique per session and server).
    """

    def __init__(
        self, spec: McpServerSpec, *, project_root: Path, supervisor: Supervisor, key: str
    ) -> None:
        self.spec = spec
        self._root = project_root
        self._supervisor = supervisor
        self._key = key
        self._client: Client | None = None
        self._tools: tuple[McpTool, ...] = ()
        self._status: ServerStatus = "stopped"  # changed through _set_status
        self._error = ""
        self._restarts = 0
        self._failures_in_a_row = 0
        self._ever_connected = False
        self._ready: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._lost = False
        self._stale = False
        self._changed = asyncio.Event()
        self._refusal = ""
        """The last HTTP error status an HTTP server answered with (this attempt)."""

    # -- what the session and the tools use -----------------------------------------------------

    @property
    def tools(self) -> tuple[McpTool, ...]:
        """The server's tools as last listed (kept while it restarts)."""
        return self._tools

    async def changed(self) -> None:
        """Return at the next change of the server's state or of its tools."""
        await self._changed.wait()

    def _set_status(self, status: ServerStatus) -> None:
        self._status = status
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def state(self) -> McpServerState:
        """A snapshot of the server's state."""
        spec = self.spec
        return McpServerState(
            name=spec.name,
            kind=spec.kind,
            target=spec.transport.describe(),
            permission=spec.permission,
            roles=spec.roles,
            status=self._status,
            restarts=self._restarts,
            error=self._error,
            tools=tuple((t.name, t.summary) for t in self._tools),
        )

    async def start(self) -> None:
        """Start the server and list its tools.

        Raises:
            McpServerFailed: it did not start, or did not answer within its start-up time.
        """
        ready = self._ready = asyncio.get_running_loop().create_future()
        self._set_status("starting")
        self._supervisor.run(self._key, self._serve, on_give_up=self._gave_up)
        await asyncio.shield(ready)

    async def close(self) -> None:
        """Stop the server (a stdio server's process ends) and forget the client."""
        if self._status != "failed":  # a failed server keeps saying why
            self._set_status("stopped")  # first: the stream that ends now is not a crash
        self._client = None
        await self._supervisor.cancel(self._key)

    async def call(self, tool: str, arguments: dict[str, JSON]) -> str:
        """Call ``tool`` on the server; return the text the model reads.

        Raises:
            ToolError: the server is down, the call failed or timed out, or the tool said
                it failed (``isError``).
        """
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        name = f"{self.spec.name}.{tool}"
        client = self._client
        if client is None:
            raise ToolError(self._down())
        timeout = self.spec.call_timeout_s
        try:
            async with asyncio.timeout(timeout):
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            raise ToolError(f"{name} did not answer within {timeout:g} s") from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._connection_lost("the connection closed during a call")
                raise ToolError(
                    f"MCP server {self.spec.name!r} stopped during the call; it is being "
                    "restarted: call the tool again in a moment"
                ) from None
            raise ToolError(f"{name} failed: {exc.message}") from None
        text, is_error = render_result(result)
        if is_error:
            raise ToolError(f"{name} reported an error: {text}")
        return text

    def _down(self) -> str:
        name = self.spec.name
        if self._status == "failed":
            return f"MCP server {name!r} is down ({self._error}); its tools cannot be used"
        if self._status == "stopped":
            return f"MCP server {name!r} is stopped"
        return f"MCP server {name!r} is restarting; call the tool again in a moment"

    # -- the supervised task --------------------------------------------------------------------

    async def _serve(self) -> None:
        """One life of the connection (the supervisor's child); see :meth:`_life`."""
        try:
            await self._life()
        finally:
            ready = self._ready
            if ready is not None and not ready.done():
                # The first start ended without saying why (cancelled, or a bug): the caller
                # of start() must not wait for ever.
                why = self._error or "it stopped before it answered"
                self._set_status("failed")
                ready.set_exception(
                    McpServerFailed(f"MCP server {self.spec.name!r} failed to start: {why}")
                )

    async def _life(self) -> None:
        """Connect, list the tools, wait until the connection is lost."""
        if self._ever_connected:
            self._set_status("restarting")
            self._restarts += 1
            steps = min(self._failures_in_a_row, _MAX_BACKOFF_STEPS)
            await asyncio.sleep(self.spec.restart_delay_s * steps)
        self._lost = self._stale = False
        self._wake = asyncio.Event()
        self._refusal = ""
        connected = False
        with _stderr_file(self.spec) as errlog:
            try:
                async with asyncio.timeout(self.spec.startup_timeout_s) as deadline:
                    async with contextlib.AsyncExitStack() as stack:
                        client = await stack.enter_async_context(self._client_for(stack, errlog))
                        await self._list_tools(client)
                        deadline.reschedule(None)
                        connected = True
                        self._connected(client)
                        await self._watch(client)
            except Exception as exc:  # every way a connection can fail: reported, then retried
                self._client = None
                refused = f" ({self._refusal})" if self._refusal else ""
                reason = _reason(exc, self.spec) + refused + _stderr_tail(errlog)
                if not connected:
                    self._failed_to_connect(reason, exc)
                    return
                self._error = reason
                self._failures_in_a_row += 1
                raise McpServerFailed(f"MCP server {self.spec.name!r} failed: {reason}") from exc
            self._client = None
            self._failures_in_a_row += 1
            self._error = f"the server stopped{_stderr_tail(errlog)}"
        raise McpServerFailed(f"MCP server {self.spec.name!r}: {self._error}")

    def _connected(self, client: Client) -> None:
        self._client = client
        self._set_status("running")
        self._error = ""
        self._failures_in_a_row = 0
        self._ever_connected = True
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _failed_to_connect(self, reason: str, exc: Exception) -> None:
        if not self._ever_connected and self._ready is not None and not self._ready.done():
            # The first start: the session's opening fails, naming the server; no retry.
            self._set_status("failed")
            self._error = reason
            self._ready.set_exception(
                McpServerFailed(f"MCP server {self.spec.name!r} failed to start: {reason}")
            )
            return
        # A restart that could not connect counts as a crash: the supervisor tries again.
        self._error = reason
        self._failures_in_a_row += 1
        raise McpServerFailed(f"MCP server {self.spec.name!r} failed to restart: {reason}") from exc

    async def _watch(self, client: Client) -> None:
        """Wait until the connection is lost, re-listing the tools when the server says so."""
        # Owned here: cancelled and awaited when the connection ends.
        listener = asyncio.create_task(self._listen(client), name=f"mcp-listen:{self._key}")
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._lost:
                    return
                if self._stale:
                    self._stale = False
                    await self._list_tools(client)
        finally:
            listener.cancel()
            await asyncio.wait([listener])

    async def _listen(self, client: Client) -> None:
        """Hear tool-list changes on a 2026-07-28 connection (``subscriptions/listen``).

        Older connections announce them with a notification instead (:meth:`_on_message`).
        """
        from mcp import MCPError
        from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost

        try:
            async with client.listen(tools_list_changed=True) as changes:
                if not changes.honored.tools_list_changed:
                    return
                async for _change in changes:
                    self._stale = True
                    self._wake.set()
        except ListenNotSupportedError:
            return
        except (MCPError, SubscriptionLost) as exc:
            # Losing the stream loses only the refreshes; a lost server is noticed anyway.
            logger.info("MCP server %r: no tool-list updates (%s)", self.spec.name, exc)

    async def _gave_up(self, key: str, exc: BaseException) -> None:
        self._set_status("failed")
        self._error = f"{self._error or exc} (given up after {self._restarts} restarts)"

    def _connection_lost(self, why: str) -> None:
        if self._lost or self._status != "running":
            return  # already known, or our own shutdown closing the stream
        logger.warning("MCP server %r: %s", self.spec.name, why)
        self._lost = True
        # Calls made from now on are told at once that the server is restarting.
        self._client = None
        self._set_status("restarting")
        self._wake.set()

    async def _on_message(self, message: IncomingMessage) -> None:
        from mcp.types import ToolListChangedNotification

        if isinstance(message, Exception):
            self._connection_lost(f"transport error: {message}")
        elif isinstance(message, ToolListChangedNotification):
            self._stale = True
            self._wake.set()

    async def _list_tools(self, client: Client) -> None:
        listed: list[McpTool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed.extend(
                McpTool(
                    server=self.spec.name,
                    name=tool.name,
                    description=tool.description or tool.title or "",
                    schema=tool.input_schema,
                    caller=self,
                )
                for tool in page.tools
            )
            cursor = page.next_cursor
            if cursor is None:
                break
        self._tools = tuple(listed)
        self._notify()

    def _client_for(self, stack: contextlib.AsyncExitStack, errlog: BinaryIO | None) -> Client:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.types import Implementation

        transport = self.spec.transport
        watched: _Watched
        if isinstance(transport, StdioTransport):
            cwd = self._root / transport.cwd if transport.cwd else self._root
            params = StdioServerParameters(
                command=transport.command,
                args=list(transport.args),
                env=dict(transport.env) or None,
                cwd=cwd,
            )
            assert errlog is not None  # a stdio server always gets one
            watched = _Watched(
                stdio_client(params, errlog=cast("TextIO", errlog)), self._connection_lost
            )
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            # The SDK's timeouts: 30 s to connect or send, 300 s for a stream to say something.
            async def note_refusal(response: httpx2.Response) -> None:
                # The SDK reports a refused request without its status; 401 says "token".
                if response.status_code >= 400:
                    self._refusal = f"HTTP {response.status_code} {response.reason_phrase}"

            http = httpx2.AsyncClient(
                headers=dict(transport.headers),
                timeout=httpx2.Timeout(30.0, read=300.0),
                event_hooks={"response": [note_refusal]},
            )
            stack.push_async_callback(http.aclose)  # closed after the client, which uses it
            watched = _Watched(
                streamable_http_client(transport.url, http_client=http), self._connection_lost
            )
        return Client(
            watched,
            client_info=Implementation(name="loomkin", version=_version()),
            message_handler=self._on_message,
            cache=None,  # always ask the server: a listing must reflect a restart or a change
        )


class _Watched:
    """A transport that reports when the server's side of the stream ends."""

    def __init__(
        self,
        inner: contextlib.AbstractAsyncContextManager[TransportStreams],
        lost: Callable[[str], None],
    ) -> None:
        self._inner = inner
        self._lost = lost

    async def __aenter__(self) -> TransportStreams:
        read, write = await self._inner.__aenter__()
        return _WatchedRead(read, self._lost), write

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)


class _WatchedRead:
    """The server-to-client stream, telling when it ends (the server exited or hung up)."""

    def __init__(
        self, inner: ReadStream[SessionMessage | Exception], lost: Callable[[str], None]
    ) -> None:
        self._inner = inner
        self._lost = lost

    @property
    def last_context(self) -> object:
        # The dispatcher reads the sender's context off the stream when it has one.
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        import anyio

        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._lost("the server closed the connection")
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        import anyio

        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None


@contextlib.contextmanager
def _stderr_file(spec: McpServerSpec) -> Iterator[BinaryIO | None]:
    """Where a stdio server's stderr goes: a temporary file, quoted when the server fails."""
    if not isinstance(spec.transport, StdioTransport):
        yield None
        return
    with tempfile.TemporaryFile() as file:
        yield file


def _stderr_tail(errlog: BinaryIO | None) -> str:
    if errlog is None:
        return ""
    errlog.seek(0, 2)
    size = errlog.tell()
    errlog.seek(max(0, size - 4 * _STDERR_TAIL))
    text = errlog.read().decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
    return f"; its stderr ends with:\n{text}" if text else ""


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (anyio task groups wrap errors in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _reason(exc: Exception, spec: McpServerSpec) -> str:
    """Why a connection failed, in words (the error types of the SDK and its transports)."""
    from mcp import MCPError

    leaf = _leaf(exc)
    transport = spec.transport
    match leaf:
        case TimeoutError():
            return f"no answer within {spec.startup_timeout_s:g} s ({transport.describe()})"
        case FileNotFoundError() if isinstance(transport, StdioTransport):
            return f"cannot run {transport.command!r}: no such program or file"
        case OSError() if isinstance(transport, StdioTransport):
            return f"cannot run {transport.command!r}: {leaf.strerror or leaf}"
        case MCPError():
            return f"{leaf.message} ({transport.describe()})"
        case McpServerFailed():
            return str(leaf)
    text = str(leaf) or type(leaf).__name__
    return f"{text} ({transport.describe()})"


def _version() -> str:
    try:
        return importlib.metadata.version("loomkin")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "0"
