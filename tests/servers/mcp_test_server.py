"""An MCP server for the tests, written with the official SDK.

Run as ``python server.py`` it speaks stdio; ``python server.py --http --token T`` serves
streamable HTTP on a free loopback port, prints the port on its first line of output, and
answers only requests that carry ``Authorization: Bearer T``.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent

server = MCPServer("loomkin-test")

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Add two integers; the answer is structured content."""
    return {"sum": a + b}


@server.tool()
def fail(reason: str) -> str:
    """Always fail with the reason given (the result has isError set)."""
    raise ToolError(reason)


@server.tool()
def picture() -> list[Any]:
    """Return a tiny image and a caption."""
    return ["a red dot", ImageContent(data=base64.b64encode(PNG).decode(), mime_type="image/png")]


@server.tool()
def where() -> str:
    """Where the server runs and what it was told (cwd, LOOMKIN_TEST_VALUE)."""
    return f"{Path.cwd()} {os.environ.get('LOOMKIN_TEST_VALUE', '-')} pid={os.getpid()}"


@server.tool()
def crash() -> str:
    """Exit the server process at once (to test restarts)."""
    os._exit(3)


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool called NAME and announce that the tool list changed."""

    def added() -> str:
        return f"{name} was added"

    server.add_tool(added, name=name, description=f"A tool added at run time: {name}.")
    await ctx.notify_tools_changed()
    return f"added {name}"


def _serve_http(token: str) -> None:
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"no token"})
                return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)  # the test reads the port, then connects
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    # The SDK's app runs its session manager in its lifespan; uvicorn runs the wrapper's.
    config.app = guarded
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--token", default="")
    parser.add_argument("--fail-at-start", action="store_true")
    options = parser.parse_args()
    if options.fail_at_start:
        print("this server is broken on purpose", file=sys.stderr)
        sys.exit(1)
    if options.http:
        _serve_http(options.token)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
