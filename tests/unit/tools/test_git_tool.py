from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ToolError
from loomkin.tools.builtin import BuiltinDeps, git

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.tools.base import ToolContext

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture
def repo(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    subprocess.run(["git", "init", "-q", "-b", "main", str(project)], check=True)
    (project / "a.txt").write_text("one\n")
    subprocess.run(["git", "-C", str(project), "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(project), "commit", "-q", "-m", "first"], check=True)
    return project


async def run_git(ctx: ToolContext, operation: str, *args: str) -> str:
    parsed = git.parse_args({"operation": operation, "args": list(args)})
    return await git.run(parsed, ctx, BuiltinDeps())


async def test_status_diff_add_commit_log(repo: Path, ctx: ToolContext) -> None:
    assert "nothing to commit" in await run_git(ctx, "status")
    (repo / "a.txt").write_text("two\n")
    diff = await run_git(ctx, "diff")
    assert "-one\n+two" in diff
    assert diff.endswith("[exit code 0]")
    await run_git(ctx, "add", "a.txt")
    assert "modified:   a.txt" in await run_git(ctx, "status")
    result = await run_git(ctx, "commit", "-m", "Second change")
    assert "Second change" in result
    log = await run_git(ctx, "log", "--oneline", "-n", "5")
    assert log.splitlines()[0].endswith("Second change")
    assert "first" in log


async def test_commit_message_forms(repo: Path, ctx: ToolContext) -> None:
    (repo / "a.txt").write_text("x\n")
    assert "msg one" in await run_git(ctx, "commit", "-am", "msg one")
    (repo / "a.txt").write_text("y\n")
    assert "msg two" in await run_git(ctx, "commit", "-a", "--message=msg two")


async def test_commit_requires_message(repo: Path, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"git commit needs a message: pass args like \['-m'"):
        await run_git(ctx, "commit")
    with pytest.raises(ToolError, match=r"needs a message"):
        await run_git(ctx, "commit", "-a")
    with pytest.raises(ToolError, match=r"needs a message"):
        await run_git(ctx, "commit", "-m", "  ")


async def test_git_failure_is_tool_error_with_exit_code(repo: Path, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"(?s)nothing to commit.*\n\[exit code 1\]$"):
        await run_git(ctx, "commit", "-m", "empty")


async def test_not_a_repository(
    project: Path, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(project.parent))
    with pytest.raises(ToolError, match=r"(?s)not a git repository.*\[exit code 128\]"):
        await run_git(ctx, "status")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-C", "/tmp"], "'-C' is not allowed: it runs git in another directory"),
        (["--git-dir=/tmp/x"], "'--git-dir' is not allowed"),
        (["--git-d=/tmp/x"], "'--git-d' is not allowed"),
        (["--work-tree", "/"], "'--work-tree' is not allowed"),
        (["-c", "core.pager=sh"], "'-c' is not allowed"),
        (["--output=/tmp/x"], "'--output' is not allowed"),
        (["--ext-diff"], "'--ext-diff' is not allowed"),
        (["/etc/passwd"], "outside the project root"),
        (["--", "../other"], "leads out of the project"),
        (["~/x"], "'~' is not expanded"),
        (["--src-prefix=/x", "--no-index", "/etc/hosts", "a.txt"], "outside the project"),
    ],
)
async def test_dangerous_arguments_refused(
    repo: Path, ctx: ToolContext, args: list[str], reason: str
) -> None:
    with pytest.raises(ToolError) as info:
        await run_git(ctx, "diff", *args)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("operation", "flag"), [("add", "-p"), ("add", "-i"), ("commit", "--patch")]
)
async def test_interactive_options_refused(
    repo: Path, ctx: ToolContext, operation: str, flag: str
) -> None:
    with pytest.raises(ToolError, match=r"is interactive"):
        await run_git(ctx, operation, flag, "-m", "x")


async def test_revision_ranges_are_not_paths(repo: Path, ctx: ToolContext) -> None:
    assert "[exit code 0]" in await run_git(ctx, "log", "HEAD~0..HEAD", "--oneline")


def test_unknown_operation_refused() -> None:
    with pytest.raises(ToolError, match=r"field 'operation': Input should be 'status', 'diff'"):
        git.parse_args({"operation": "push"})


def test_target(ctx: ToolContext) -> None:
    args = git.parse_args({"operation": "commit", "args": ["-m", "x"]})
    assert git.target(args, ctx) == "git commit -m x"


@pytest.mark.parametrize(
    ("operation", "args", "reason"),
    [
        ("commit", ["-F/etc/passwd"], "outside the project root"),
        ("commit", ["--file=/etc/passwd"], "outside the project root"),
        ("commit", ["-F", "/etc/passwd"], "outside the project root"),
        ("commit", ["-t/etc/passwd", "-m", "x"], "outside the project root"),
        ("diff", ["-O/etc/passwd"], "outside the project root"),
        ("diff", ["-C/tmp"], "outside the project root"),
        ("log", ["-L1,2:/etc/passwd"], "outside the project root"),
        ("diff", ["--output=../out.txt"], "'--output' is not allowed"),
        ("diff", ["-o/tmp/x"], "outside the project root"),
        ("commit", ["--template=../t", "-m", "x"], "'--template' is not allowed"),
        ("add", ["--pathspec-from-file=/etc/passwd"], "'--pathspec-from-file' is not allowed"),
        ("status", ["--git-dir=/tmp/x"], "'--git-dir' is not allowed"),
        ("status", ["--work-tree=/tmp"], "'--work-tree' is not allowed"),
        ("log", ["-c", "alias.x=!sh"], "'-c' is not allowed"),
        ("log", ["--config-env=core.pager=EDITOR"], "'--config-env' is not allowed"),
        ("log", ["--config=core.pager=sh"], "'--config' is not allowed"),
        ("log", ["--exec-path=/tmp"], "'--exec-path' is not allowed"),
        ("log", ["--upload-pack=sh"], "'--upload-pack' is not allowed"),
        ("log", ["--receive-pack=sh"], "'--receive-pack' is not allowed"),
        ("add", [":/../x"], "leads out of the project"),
    ],
)
async def test_option_values_are_checked(
    repo: Path, ctx: ToolContext, operation: str, args: list[str], reason: str
) -> None:
    with pytest.raises(ToolError) as info:
        await run_git(ctx, operation, *args)
    assert reason in str(info.value)


async def test_messages_are_not_paths(repo: Path, ctx: ToolContext) -> None:
    (repo / "a.txt").write_text("three\n")
    await run_git(ctx, "add", "a.txt")
    result = await run_git(ctx, "commit", "-m", "See /etc/hosts and ../x: https://x.org")
    assert "See /etc/hosts" in result
    (repo / "a.txt").write_text("four\n")
    assert "[exit code 0]" in await run_git(ctx, "commit", "-am/etc/passwd is a message")


def _make_repo(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "x.txt").write_text("x\n")
    subprocess.run(["git", "-C", str(path), "add", "x.txt"], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "x"], check=True)


async def test_add_refuses_nested_repositories(repo: Path, ctx: ToolContext) -> None:
    nested = repo / "vendor" / "lib"
    nested.mkdir(parents=True)
    _make_repo(nested)
    (repo / "b.txt").write_text("b\n")
    with pytest.raises(ToolError, match=r"'vendor/lib' is a nested git repository"):
        await run_git(ctx, "add", "-A")
    staged = await run_git(ctx, "status", "--porcelain")
    assert "A  b.txt" in staged
    assert "A  vendor" not in staged


async def test_git_sees_no_secrets(
    repo: Path, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-git-test-1234")
    (repo / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nenv\n")
    (repo / ".git" / "hooks" / "pre-commit").chmod(0o755)
    (repo / "a.txt").write_text("hooked\n")
    result = await run_git(ctx, "commit", "-am", "with a hook")
    assert "GIT_AUTHOR_NAME" in result or "PATH=" in result  # the hook ran and printed env
    assert "sk-git-test-1234" not in result
