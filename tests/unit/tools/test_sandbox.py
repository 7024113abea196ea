"""The sandbox commands run in: environment, lifetime, file system, network, fallback."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ToolError
from loomkin.tools.builtin import BuiltinDeps, Sandbox, ShellPolicy, child_environment, shell
from loomkin.tools.builtin.sandbox import bwrap_flags, kill_marked_processes

if TYPE_CHECKING:
    from loomkin.tools.base import ToolContext
    from loomkin.tools.builtin import SandboxRun

SECRETS = {
    "OPENAI_API_KEY": "sk-test-openai-0b1c",
    "ANTHROPIC_API_KEY": "sk-ant-test-77aa",
    "LOOMKIN_TOKEN": "loomkin-token-5e5e",
    "GITHUB_TOKEN": "ghp_test_9f9f",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-3c3c",
    "DB_PASSWORD": "db-password-4d4d",
}

# Run in a child process (the test itself never sleeps): waits until no process has this
# command line any more, polling /proc; the test's timeout bounds the wait.
WAIT_UNTIL_GONE = """
import pathlib, sys, time
wanted = "\\0".join(sys.argv[1:]).encode() + b"\\0"
def running():
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == wanted:
                return True
        except OSError:
            pass
    return False
while running():
    time.sleep(0.02)
"""


async def sh(
    sandbox: Sandbox, root: Path, command: str, *, timeout_s: float = 10.0, network: bool = False
) -> SandboxRun:
    """Run straight in the sandbox, without the guard: what the sandbox alone allows."""
    return await sandbox.run(
        project_root=root,
        timeout_s=timeout_s,
        output_cap=20_000,
        shell_command=command,
        network=network,
    )


async def wait_until_gone(argv: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WAIT_UNTIL_GONE, *argv)
    await proc.wait()


# -- environment ---------------------------------------------------------------------------


def test_child_environment_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("LC_API_KEY", "hidden-in-a-locale-name")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    env = child_environment("/nowhere")
    assert env["HOME"] == "/nowhere"
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["PATH"] == os.environ["PATH"]
    assert env["PAGER"] == "cat"
    for name in [*SECRETS, "LC_API_KEY", "GIT_AUTHOR_NAME", "SOMETHING_ELSE"]:
        assert name not in env
    assert child_environment("/h", extra=["GIT_AUTHOR_NAME"])["GIT_AUTHOR_NAME"] == "Ada"
    assert "OPENAI_API_KEY" not in child_environment("/h", extra=["OPENAI_API_KEY"])


async def test_commands_see_no_secrets(
    monkeypatch: pytest.MonkeyPatch, project: Path, sandbox: Sandbox
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    run = await sh(sandbox, project, "env; echo HOME=$HOME")
    output = run.result.output
    assert "PATH=" in output
    for value in SECRETS.values():
        assert value not in output
    home = next(line for line in output.splitlines() if line.startswith("HOME="))
    assert home != f"HOME={os.environ.get('HOME')}"


# -- lifetime ------------------------------------------------------------------------------


async def test_nothing_outlives_the_call(project: Path, sandbox: Sandbox) -> None:
    # setsid leaves the process group; the sandbox's PID namespace (or, unsandboxed, the
    # environment marker sweep) still ends it when the call returns.
    sleeper = ["sleep", "27.1828"]
    run = await sh(sandbox, project, f"setsid {' '.join(sleeper)} > /dev/null 2>&1 &")
    assert run.result.exit_code == 0
    await wait_until_gone(sleeper)


async def test_timeout_kills_everything_started(
    project: Path, ctx: ToolContext, sandbox: Sandbox
) -> None:
    sleeper = ["sleep", "26.535"]
    command = f"echo started; setsid {' '.join(sleeper)} & sleep 30"
    deps = BuiltinDeps(shell_policy=ShellPolicy(sandbox=sandbox))
    with pytest.raises(ToolError, match=r"(?s)^started\n\[timed out after 0.3 s"):
        await shell.run(shell.parse_args({"command": command, "timeout_s": 0.3}), ctx, deps)
    await wait_until_gone(sleeper)
    await wait_until_gone(["sleep", "30"])


def test_kill_marked_processes_finds_nothing_for_an_unknown_marker() -> None:
    assert kill_marked_processes(uuid.uuid4().hex) == 0


# -- file system and network (the bubblewrap sandbox itself, without the guard) ------------


async def test_rest_of_the_file_system_is_read_only(project: Path, bwrap: Sandbox) -> None:
    outside = Path("/var/tmp") / f"loomkin-canary-{uuid.uuid4().hex}"
    try:
        run = await sh(bwrap, project, f"touch {outside}; echo x > {project}/inside.txt")
        assert "Read-only file system" in run.result.output
        assert not outside.exists()
        assert (project / "inside.txt").read_text() == "x\n"
    finally:
        outside.unlink(missing_ok=True)


async def test_tmp_is_private(project: Path, tmp_path: Path, bwrap: Sandbox) -> None:
    (tmp_path / "host-only.txt").write_text("host")
    mine = f"/tmp/loomkin-private-{uuid.uuid4().hex}"
    run = await sh(bwrap, project, f"cat {tmp_path}/host-only.txt; touch {mine}; ls {mine}")
    assert "host" not in run.result.output.splitlines()
    assert run.result.output.splitlines()[-1] == mine  # written in the sandbox's own /tmp
    assert not await asyncio.to_thread(os.path.exists, mine)


async def test_git_internals_and_config_are_read_only_and_loomkin_state_hidden(
    project: Path, bwrap: Sandbox
) -> None:
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("[core]\n")
    (project / ".loomkin").mkdir()
    (project / ".loomkin" / "server.json").write_text('{"token": "web-token-1f1f"}')
    (project / "loomkin.toml").write_text("[shell]\n")
    run = await sh(
        bwrap,
        project,
        "echo '[core] fsmonitor = evil' >> .git/config; cat .git/config; "
        "cat .loomkin/server.json; echo x > .loomkin/loomkin.db; echo network=true >> loomkin.toml",
    )
    assert (project / "loomkin.toml").read_text() == "[shell]\n"
    assert "[core]" in run.result.output  # readable
    assert "web-token-1f1f" not in run.result.output
    assert (project / ".git" / "config").read_text() == "[core]\n"
    assert not (project / ".loomkin" / "loomkin.db").exists()


async def test_capabilities_are_dropped(project: Path, bwrap: Sandbox) -> None:
    run = await sh(bwrap, project, "grep CapEff /proc/self/status; mount -o remount,rw /")
    assert "CapEff:\t0000000000000000" in run.result.output
    assert run.result.exit_code != 0


async def test_network_is_off_by_default(project: Path, bwrap: Sandbox) -> None:
    accepted = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connect = f"bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo connected"
    async with server:
        off = await sh(bwrap, project, connect)
        assert off.result.exit_code != 0
        assert "connected" not in off.result.output
        assert not accepted.is_set()
        on = await sh(bwrap, project, connect, network=True)
        assert on.result.output.strip() == "connected"
        await asyncio.wait_for(accepted.wait(), timeout=5)


def test_bwrap_flags(project: Path) -> None:
    flags = bwrap_flags(project, network=False, writable_git=False)
    assert flags[:3] == ["--ro-bind", "/", "/"]
    assert ["--bind", str(project), str(project)] == flags[flags.index("--bind") :][:3]
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in flags
    assert flags[flags.index("--cap-drop") + 1] == "ALL"
    assert "--unshare-net" not in bwrap_flags(project, network=True, writable_git=False)


# -- fallback ------------------------------------------------------------------------------


async def test_missing_bwrap_is_said_once(
    project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = Sandbox(bwrap=str(tmp_path / "no-such-bwrap"))
    with caplog.at_level(logging.WARNING, logger="loomkin.tools.builtin.sandbox"):
        first = await sh(sandbox, project, "echo one")
        second = await sh(sandbox, project, "echo two")
    assert not first.sandboxed
    assert first.notice is not None
    assert "no-such-bwrap is not installed" in first.notice
    assert second.notice is None
    assert second.result.output == "two\n"
    assert len([r for r in caplog.records if "without the bubblewrap sandbox" in r.message]) == 1


async def test_bwrap_without_namespaces_falls_back(project: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    sandbox = Sandbox(bwrap=str(fake))
    assert not await sandbox.available()
    assert sandbox.unavailable_reason is not None
    assert "No permissions to create new namespace" in sandbox.unavailable_reason


async def test_first_shell_result_carries_the_notice(
    project: Path, ctx: ToolContext, tmp_path: Path
) -> None:
    policy = ShellPolicy(sandbox=Sandbox(bwrap=str(tmp_path / "missing")))
    deps = BuiltinDeps(shell_policy=policy)
    first = await shell.run(shell.parse_args({"command": "echo hi"}), ctx, deps)
    assert first.startswith("[note: no working bubblewrap sandbox")
    assert first.endswith("hi\n[exit code 0]")
    again = await shell.run(shell.parse_args({"command": "echo hi"}), ctx, deps)
    assert again == "hi\n[exit code 0]"
