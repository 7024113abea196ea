"""MCP tool servers end to end (issue #20, SPEC §3.12): real servers, real processes.

The test server (``tests/mcp/server.py``) is written with the official SDK and runs over
stdio and over streamable HTTP; ``mcp-server-git`` is the published server from PyPI (the dev
group installs it), run on a test repository, offline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loomkin.core.events import PermissionRequested, ToolCallCompleted
from loomkin.errors import McpServerFailed
from loomkin.runtime.supervisor import Supervisor
from loomkin.service import Loomkin, probe_mcp_servers
from loomkin.service.config import load_config
from loomkin.service.options import SessionOptions, session_options
from loomkin.testing.internals import live_agent
from loomkin.testing.models import Call, Reply, ScriptedModel
from loomkin.tools.mcp import HttpTransport, McpManager, McpServerSpec, StdioTransport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from loomkin.service import Session
    from loomkin.tools.base import ToolContext

SERVER = Path(__file__).resolve().parents[1] / "servers" / "mcp_test_server.py"
pytestmark = pytest.mark.timeout(120)


def stdio(name: str = "t", *args: str, **changes: object) -> McpServerSpec:
    spec = McpServerSpec(
        name=name, transport=StdioTransport(command=sys.executable, args=(str(SERVER), *args))
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]  # test overrides


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    sup = Supervisor()
    yield sup
    await sup.stop()


async def started(sup: Supervisor, root: Path, *specs: McpServerSpec) -> McpManager:
    manager = McpManager(specs, project_root=root, supervisor=sup, group="test")
    await manager.start()
    return manager


async def call(manager: McpManager, server: str, tool: str, args: dict[str, object]) -> str:
    found = manager.toolset(server).get(f"{server}.{tool}")
    ctx: ToolContext = None  # type: ignore[assignment]  # MCP tools read nothing of it
    return await found.run(found.parse_args(json.dumps(args)), ctx, None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent reaps it later).
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(")")[-1].split()[0] != "Z"


def pid_of(where: str) -> int:
    return int(where.rsplit("pid=", 1)[1])


# -- stdio -------------------------------------------------------------------------------------


async def test_stdio_server_tools_schemas_and_results(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    spec = dataclasses.replace(
        stdio(),
        transport=StdioTransport(
            command=sys.executable,
            args=(str(SERVER),),
            env=(("LOOMKIN_TEST_VALUE", "from-config"),),
            cwd="sub",
        ),
    )
    (tmp_path / "sub").mkdir()
    manager = await started(supervisor, tmp_path, spec)
    tools = manager.toolset("t")
    assert set(tools.names()) >= {"t.echo", "t.add", "t.fail", "t.picture", "t.where"}
    add = tools.get("t.add")
    assert add.category == "execute"
    assert add.schema()["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert await call(manager, "t", "echo", {"text": "héllo"}) == "héllo"
    assert json.loads(await call(manager, "t", "add", {"a": 2, "b": 3})) == {"sum": 5}
    picture = await call(manager, "t", "picture", {})
    assert picture == "a red dot\n[image: image/png, 70 bytes; not shown to you]"
    where = await call(manager, "t", "where", {})
    # Runs where told, with the variable set in the config and not the parent's secrets.
    assert where.startswith(f"{tmp_path / 'sub'} from-config pid=")
    (state,) = manager.states()
    assert (state.status, state.kind, state.restarts, state.error) == ("running", "stdio", 0, "")
    await manager.close()
    assert not alive(pid_of(where))
    assert manager.states()[0].status == "stopped"


async def test_a_tool_error_and_bad_arguments_reach_the_model_as_errors(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    from loomkin.errors import ToolError

    manager = await started(supervisor, tmp_path, stdio())
    with pytest.raises(ToolError, match=r"t\.fail reported an error: .*no luck"):
        await call(manager, "t", "fail", {"reason": "no luck"})
    add = manager.toolset("t").get("t.add")
    with pytest.raises(ToolError, match=r"Invalid arguments for t\.add: field 'a': 'x' is not"):
        add.parse_args('{"a": "x", "b": 1}')
    with pytest.raises(ToolError, match=r"'b' is a required property"):
        add.parse_args('{"a": 1}')
    with pytest.raises(ToolError, match="not valid JSON"):
        add.parse_args("{a: 1")
    await manager.close()


async def test_a_server_that_dies_is_restarted(supervisor: Supervisor, tmp_path: Path) -> None:
    from loomkin.errors import ToolError

    manager = await started(supervisor, tmp_path, stdio(restart_delay_s=0.0))
    first = pid_of(await call(manager, "t", "where", {}))
    with pytest.raises(ToolError, match="stopped during the call; it is being restarted"):
        await call(manager, "t", "crash", {})
    restarting = manager.states()[0]
    assert restarting.status in ("restarting", "running")
    await _until(manager, lambda: manager.states()[0].status == "running")
    state = manager.states()[0]
    assert (state.restarts, state.status) == (1, "running")
    second = pid_of(await call(manager, "t", "where", {}))
    assert second != first
    assert not alive(first)
    await manager.close()
    assert not alive(second)


async def test_a_changed_tool_list_is_fetched_again(supervisor: Supervisor, tmp_path: Path) -> None:
    manager = await started(supervisor, tmp_path, stdio())
    assert "t.extra" not in manager.toolset("t")
    assert await call(manager, "t", "grow", {"name": "extra"}) == "added extra"
    await _until(manager, lambda: "t.extra" in manager.toolset("t"))
    assert await call(manager, "t", "extra", {}) == "extra was added"
    await manager.close()


async def test_a_server_that_fails_to_start_is_named_with_its_stderr(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    with pytest.raises(McpServerFailed) as failed:
        await started(supervisor, tmp_path, stdio("broken", "--fail-at-start"))
    message = str(failed.value)
    assert message.startswith("MCP server 'broken' failed to start: ")
    assert "this server is broken on purpose" in message


async def test_a_missing_program_and_one_good_server_open_nothing(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    missing = McpServerSpec(name="nope", transport=StdioTransport(command="no-such-program-x1"))
    good = stdio("good")
    manager = McpManager((good, missing), project_root=tmp_path, supervisor=supervisor, group="g")
    with pytest.raises(
        McpServerFailed,
        match="MCP server 'nope' failed to start: cannot run 'no-such-program-x1': no such program",
    ):
        await manager.start()
    # The good one was started, then stopped again: nothing is left running.
    assert [s.status for s in manager.states()] == ["stopped", "failed"]
    assert supervisor.statistics().running == 0


# -- streamable HTTP ---------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", "--token", "s3cret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())  # printed once the socket listens
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_http_server_with_headers(
    supervisor: Supervisor, tmp_path: Path, http_server: str
) -> None:
    spec = McpServerSpec(
        name="remote",
        transport=HttpTransport(url=http_server, headers=(("Authorization", "Bearer s3cret"),)),
    )
    manager = await started(supervisor, tmp_path, spec)
    assert await call(manager, "remote", "echo", {"text": "over http"}) == "over http"
    assert json.loads(await call(manager, "remote", "add", {"a": 40, "b": 2})) == {"sum": 42}
    assert await call(manager, "remote", "grow", {"name": "later"}) == "added later"
    await _until(manager, lambda: "remote.later" in manager.toolset("remote"))
    (state,) = manager.states()
    assert (state.kind, state.target, state.status) == ("http", http_server, "running")
    await manager.close()


async def test_http_server_without_its_token_fails_to_start_naming_it(
    supervisor: Supervisor, tmp_path: Path, http_server: str
) -> None:
    spec = McpServerSpec(
        name="remote", transport=HttpTransport(url=http_server), startup_timeout_s=20.0
    )
    refused = r"MCP server 'remote' failed to start: .*\(HTTP 401 Unauthorized\)"
    with pytest.raises(McpServerFailed, match=refused):
        await started(supervisor, tmp_path, spec)


# -- a published server: mcp-server-git -------------------------------------------------------


def _git_repo(root: Path) -> Path:
    root.mkdir()
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.invalid", "-C", str(root)]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "first commit"], check=True)
    (root / "a.txt").write_text("two\n")
    return root


async def test_mcp_server_git_from_pypi_on_a_test_repository(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    program = shutil.which("mcp-server-git", path=str(Path(sys.executable).parent))
    assert program is not None, "the dev group installs mcp-server-git"
    repo = _git_repo(tmp_path / "repo")
    spec = McpServerSpec(
        name="git", transport=StdioTransport(command=program, args=("--repository", str(repo)))
    )
    manager = await started(supervisor, tmp_path, spec)
    assert {"git.git_status", "git.git_log", "git.git_diff_unstaged"} <= set(
        manager.toolset("git").names()
    )
    status = await call(manager, "git", "git_status", {"repo_path": str(repo)})
    assert "a.txt" in status
    log = await call(manager, "git", "git_log", {"repo_path": str(repo)})
    assert "first commit" in log
    diff = await call(manager, "git", "git_diff_unstaged", {"repo_path": str(repo)})
    assert "-one" in diff
    assert "+two" in diff
    await manager.close()


# -- through a session: roles opt in, permissions, the facade ----------------------------------


def _configure(project: Path, server_extra: str = "", roles: str = "") -> SessionOptions:
    project.mkdir(exist_ok=True)
    (project / "loomkin.toml").write_text(
        f"[mcp.servers.t]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SERVER))}]\n{server_extra}\n{roles}"
    )
    options = session_options(load_config(project))
    return dataclasses.replace(
        options, settings=dataclasses.replace(options.settings, bootstrap_orienter=False)
    )


async def _open(
    lk: Loomkin, project: Path, options: SessionOptions, model: ScriptedModel
) -> Session:
    def models(_role: object, name: str) -> ScriptedModel:
        return model if name == "helper" else ScriptedModel([], name="scripted:idle")

    return await lk.open_session(
        project,
        model_factory=models,  # type: ignore[arg-type]  # the role is not needed
        settings=options.settings,
        policy=options.policy,
        prices=options.prices,
    )


async def _results(session: Session) -> list[ToolCallCompleted]:
    return [r.event for r in await session.history() if isinstance(r.event, ToolCallCompleted)]


async def test_an_agent_whose_role_opts_in_calls_the_servers_tools(tmp_path: Path) -> None:
    options = _configure(
        tmp_path / "p",
        'permission = "allow"',
        '[roles.helper]\nprompt = "You help."\ntools = ["file_read", "mcp:t"]\n',
    )
    calls = [Call("t.echo", {"text": "hi"}), Call("t.add", {"a": 1, "b": 2}), Call("t.where")]
    model = ScriptedModel([Reply(tool_calls=calls), Reply(text="done")])
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, tmp_path / "p", options, model)
        await session.spawn_agent("helper", "helper")
        await session.send("use the tools", to="helper")
        await lk.wait_idle()
        echo, add, where = await _results(session)
        assert (echo.tool, echo.result, echo.is_error) == ("t.echo", "hi", False)
        assert (add.tool, json.loads(add.result)) == ("t.add", {"sum": 3})
        offered = [t.name for t in model.requests[0].tools]
        assert offered[0] == "file_read"
        assert {"t.echo", "t.add", "t.where"} <= set(offered)
        (server,) = session.mcp_servers()
        assert (server.name, server.status, server.permission) == ("t", "running", "allow")
        assert "t.echo" in {tool.name for tool in server.tools}
        assert alive(pid_of(where.result))
    assert not alive(pid_of(where.result))  # closing the runtime stopped the server


async def test_built_in_roles_get_a_server_by_its_roles_setting(tmp_path: Path) -> None:
    options = _configure(tmp_path / "p", 'roles = ["coder"]\npermission = "deny"')
    model = ScriptedModel([Reply(tool_calls=[Call("t.echo", {"text": "x"})]), Reply(text="ok")])
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, tmp_path / "p", options, model)
        await session.spawn_agent("helper", "coder")
        await session.send("echo", to="helper")
        await lk.wait_idle()
        (result,) = await _results(session)
        assert result.is_error
        assert result.outcome == "denied"
        assert "t.echo is denied by the permission policy" in result.result
        assert "t.echo" in [t.name for t in model.requests[0].tools]
        # A role that did not opt in does not get the server's tools.
        await session.spawn_agent("rev", "reviewer")
        assert not [n for n in live_agent(session, "rev").tools.names() if n.startswith("t.")]
        assert "t.where" in live_agent(session, "helper").tools


async def test_a_server_left_at_ask_asks_and_allow_always_covers_the_tool(
    tmp_path: Path,
) -> None:
    options = _configure(
        tmp_path / "p", "", '[roles.helper]\nprompt = "You help."\ntools = ["mcp:t"]\n'
    )
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("t.echo", {"text": "one"})]),
            Reply(tool_calls=[Call("t.echo", {"text": "two"})]),
            Reply(text="done"),
        ]
    )
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, tmp_path / "p", options, model)
        await session.spawn_agent("helper", "helper")
        asked: list[str] = []

        async def responder(prompt: object) -> str:
            asked.append(getattr(prompt, "tool", ""))
            return "allow_always"

        session.set_permission_responder(responder)  # type: ignore[arg-type]
        await session.send("echo twice", to="helper")
        await lk.wait_idle()
        assert asked == ["t.echo"]  # asked once; "allow always" covers the second call
        requested = [
            r.event for r in await session.history() if isinstance(r.event, PermissionRequested)
        ]
        assert [(p.tool, p.category, p.arguments) for p in requested] == [
            ("t.echo", "execute", {"text": "one"})
        ]
        assert [r.result for r in await _results(session)] == ["one", "two"]


async def test_a_session_does_not_open_when_a_server_fails(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "loomkin.toml").write_text(
        f"[mcp.servers.broken]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SERVER))}, '--fail-at-start']\n"
    )
    options = session_options(load_config(project))
    async with await Loomkin.open("memory:") as lk:
        with pytest.raises(McpServerFailed, match="MCP server 'broken' failed to start"):
            await lk.open_session(project, model=ScriptedModel([]), settings=options.settings)
        assert lk.sessions() == []  # nothing recorded


async def test_probe_lists_every_server_and_reports_the_broken_one(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "loomkin.toml").write_text(
        f"[mcp.servers.t]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SERVER))}]\n"
        f"[mcp.servers.broken]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SERVER))}, '--fail-at-start']\n"
    )
    settings = session_options(load_config(project)).settings
    good, broken = await probe_mcp_servers(settings, project)
    assert (good.name, good.status) == ("t", "running")  # as it was when listed
    assert "t.echo" in {t.name for t in good.tools}
    assert (broken.name, broken.status, broken.tools) == ("broken", "failed", ())
    assert "this server is broken on purpose" in broken.error


async def _until(manager: McpManager, condition: Callable[[], bool]) -> None:
    """Wait for a real process to get there: on the servers' change events, with a deadline."""
    async with asyncio.timeout(30):
        await manager.wait_until(condition)


# -- reachable from the CLI and the HTTP API ---------------------------------------------------


def _two_servers(project: Path) -> None:
    project.mkdir()
    (project / "loomkin.toml").write_text(
        f"[mcp.servers.t]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SERVER))}]\nroles = ['coder']\n"
        f"[mcp.servers.broken]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SERVER))}, '--fail-at-start']\n"
    )


def test_cli_mcp_list_shows_servers_tools_and_failures(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from loomkin.cli.main import cli

    project = tmp_path / "p"
    _two_servers(project)
    runner = CliRunner()
    shown = runner.invoke(cli, ["mcp", "list", "--project", str(project)])
    assert shown.exit_code == 1  # a server failed
    text = " ".join(shown.output.split())
    assert "t (stdio: " in text
    assert "permission: ask, roles: coder" in text
    assert "t.echo Say the text back." in text
    assert "broken (stdio: " in text
    assert "failed: MCP server 'broken' failed to start" not in text  # the reason, not repeated
    assert "this server is broken on purpose" in text
    listed = runner.invoke(cli, ["mcp", "list", "--project", str(project), "--json"])
    servers = json.loads(listed.output)
    assert [(s["name"], s["status"]) for s in servers] == [("t", "running"), ("broken", "failed")]
    empty = runner.invoke(cli, ["mcp", "list", "--project", str(tmp_path)])
    assert (empty.exit_code, "no MCP servers in" in empty.output) == (0, True)


async def test_http_api_shows_the_sessions_servers(tmp_path: Path) -> None:
    import httpx

    from loomkin.api import create_app

    options = _configure(tmp_path / "p", 'roles = ["coder"]')
    async with await Loomkin.open("memory:") as lk:
        session = await _open(lk, tmp_path / "p", options, ScriptedModel([]))
        app = create_app(lk)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                answer = await c.get(f"/api/sessions/{session.session_id}/mcp")
                missing = await c.get("/api/sessions/nope/mcp")
    assert answer.status_code == 200
    (server,) = answer.json()
    assert (server["name"], server["status"], server["transport"]) == ("t", "running", "stdio")
    assert (server["permission"], server["roles"], server["restarts"]) == ("ask", ["coder"], 0)
    assert {"name": "t.echo", "description": "Say the text back."} in server["tools"]
    assert missing.status_code == 404
