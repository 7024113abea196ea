"""The shell escape suite (issue #14): known ways out of the project, each tried for real.

Every form targets canary directories outside the project (one under /var/tmp, read-only in
the sandbox; one next to the project, hidden by the sandbox's private /tmp) and runs with fake
API keys and a fake Loomkin token in the environment and a fake web token in
``.loomkin/server.json``. Each must leave the canaries unchanged and print no secret:

* ``bwrap``: the shell tool as shipped, guard then bubblewrap;
* ``guard-only``: the fallback where bubblewrap is missing, the guard alone;
* ``bwrap-no-guard``: the sandbox alone, as if the guard had let everything through.

``BEYOND_THE_GUARD`` forms run code the guard does not read (interpreters, scripts): they are
tried with the sandbox only, since without it they succeed (SECURITY.md records it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loomkin.errors import ToolError
from loomkin.tools.builtin import BuiltinDeps, Sandbox, ShellPolicy, check_command, shell

from .conftest import require_bwrap

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loomkin.tools.base import ToolContext

pytestmark = pytest.mark.timeout(120)

# {c}: canary outside /tmp (read-only in the sandbox); {r}: sibling canary, relative path.
WRITE_FORMS = [
    ("unbalanced-quote-comment", "rm -rf {c} #'"),
    ("nice", "nice -n 1 rm -rf {c}"),
    ("env-unset", "env -u X rm -rf {c}"),
    ("env-ignore", "env -i PATH=/usr/bin:/bin rm -rf {c}"),
    ("env-assign", "env X=1 touch {c}/new"),
    ("env-split-string", "env -S 'touch {c}/new'"),
    ("timeout", "timeout 5 rm -rf {c}"),
    ("timeout-signal", "timeout -s KILL 5 touch {c}/new"),
    ("xargs", "echo {c} | xargs rm -rf"),
    ("xargs-replace", "echo {c} | xargs -I@ touch @/new"),
    ("nohup", "nohup rm -rf {c}"),
    ("setsid", "setsid rm -rf {c}"),
    ("setsid-background", "setsid sh -c 'touch {c}/new' &"),
    ("stdbuf", "stdbuf -o0 touch {c}/new"),
    ("command", "command rm -rf {c}"),
    ("builtin-redirect", "builtin echo x > {c}/new"),
    ("exec", "exec touch {c}/new"),
    ("time", "time touch {c}/new"),
    ("ionice", "ionice -c 3 touch {c}/new"),
    ("chrt", "chrt -o 0 touch {c}/new"),
    ("taskset", "taskset -c 0 touch {c}/new"),
    ("brace-group", "{{ rm -rf {c}; }}"),
    ("if", "if true; then rm -rf {c}; fi"),
    ("bang", "! rm -rf {c}"),
    ("while", "while true; do touch {c}/new; break; done"),
    ("subshell", "(rm -rf {c})"),
    ("case", "case x in x) touch {c}/new;; esac"),
    ("function", "f() {{ touch {c}/new; }}; f"),
    ("dollar-paren", "echo $(touch {c}/new)"),
    ("backticks", "echo `touch {c}/new`"),
    ("param-default-subst", "echo ${{X:-$(touch {c}/new)}}"),
    ("heredoc-subst", "cat <<EOF\n$(touch {c}/new)\nEOF"),
    ("dd-of", "dd if=/dev/zero of={c}/victim bs=1 count=1"),
    ("cp-target-dir", "cp -t {c} README"),
    ("cp-last-arg", "cp README {c}/new"),
    ("mv-out", "mv README {c}/"),
    ("install", "install -D README {c}/new"),
    ("sed-in-place", "sed -i s/canary/changed/ {c}/victim"),
    ("sed-w-command", "sed -n 'w {c}/new' README"),
    ("tar-create", "tar -cf {c}/new.tar README"),
    ("tar-extract-dir", "tar -cf a.tar README && tar -C {c} -xf a.tar"),
    ("symlink-then-write", "ln -s {c} link && touch link/new"),
    ("relative-symlink", "ln -s {r} up; echo x > up/new"),
    ("hardlink-then-write", "ln {c}/victim h && echo changed > h"),
    ("tee", "echo x | tee {c}/new"),
    ("redirect", "echo x > {c}/new"),
    ("redirect-append", "echo x >> {c}/victim"),
    ("redirect-stderr", "ls 2> {c}/new"),
    ("redirect-both", "ls &> {c}/new"),
    ("redirect-clobber", "echo x >| {c}/new"),
    ("redirect-first", "2>{c}/new ls"),
    ("redirect-read-write", "echo x 1<>{c}/new"),
    ("exec-redirect", "exec 3>{c}/new; echo x >&3"),
    ("truncate", "truncate -s 0 {c}/victim"),
    ("rsync", "rsync README {c}/new"),
    ("chmod", "chmod 000 {c}/victim"),
    ("relative-dotdot", "touch {r}/new"),
    ("cd-out", "cd .. && touch canary/new"),
    ("cd-absolute", "cd {c} && touch new"),
    ("cd-in-subshell", "mkdir -p sub; (cd sub); touch ../canary/new"),
    ("cd-in-pipeline", "mkdir -p sub; cd sub | true; touch ../canary/new"),
    ("cd-in-background", "mkdir -p sub; cd sub & touch ../canary/new"),
    ("cd-that-fails", "cd missing; touch ../canary/new"),
    ("cd-or", "cd missing || touch ../canary/new"),
    ("sh-c", "sh -c 'touch {c}/new'"),
    ("bash-c", 'bash -c "rm -rf {c}"'),
    ("pipe-into-sh", "echo 'touch {c}/new' | sh"),
    ("heredoc-into-sh", "sh <<EOF\ntouch {c}/new\nEOF"),
    ("herestring-into-bash", "bash -c \"bash <<< 'touch {c}/new'\""),
    ("eval", "eval 'touch {c}/new'"),
    ("trap", "trap 'touch {c}/new' EXIT"),
    ("alias", "alias t='touch {c}/new'\nt"),
    ("variable", "X={c}; rm -rf $X"),
    ("for-variable", "for d in {c}; do touch $d/new; done"),
    ("program-from-variable", "a=touch; $a {c}/new"),
    ("quoted-program", '"to""uch" {c}/new'),
    ("escaped-program", "t\\ouch {c}/new"),
    ("ansi-c-quote", "bash -c \"bash -c \\$'\\\\x74ouch {c}/new'\""),
    ("brace-expansion", "bash -c 'touch {{x,{c}/new}}'"),
    ("process-substitution", "bash -c 'echo x > >(tee {c}/new)'"),
    ("find-delete", "find {c} -delete"),
    ("find-exec", "find . -maxdepth 0 -exec touch {c}/new \\;"),
    ("find-exec-plus", "find {c} -exec rm {{}} +"),
    ("mkdir", "mkdir {c}/newdir"),
    ("git-C", "git -C {c} init"),
    ("git-init", "git init {c}/repo"),
    ("curl-output", "curl -so {c}/new file:///etc/hostname"),
    ("split", "split -l 1 README {c}/part"),
    ("sort-output", "sort -o {c}/new README"),
    ("gzip", "gzip {c}/victim"),
    ("awk-redirect", 'awk \'BEGIN {{ printf "x" > "{c}/new" }}\''),
    ("perl-in-place", "perl -pi -e 's/canary/changed/' {c}/victim"),
    ("flock", "flock {c}/lock true"),
    ("git-config-fsmonitor", "git init -q; git -c core.fsmonitor='touch {c}/new' status"),
]
SECRET_FORMS = [
    ("env", "env"),
    ("printenv", "printenv"),
    ("set", "set"),
    ("export", "export -p"),
    ("echo-keys", "echo $OPENAI_API_KEY $ANTHROPIC_API_KEY $LOOMKIN_TOKEN"),
    ("proc-self-environ", "cat /proc/self/environ"),
    ("proc-parent-environ", "cat /proc/$PPID/environ"),
    ("proc-parent-environ-tr", "tr '\\0' '\\n' < /proc/$PPID/environ"),
    ("proc-all-environ", "cat /proc/*/environ"),
    ("ps-environment", "ps eww"),
    ("server-json", "cat .loomkin/server.json"),
    ("server-json-glob", "cat .loom*/server.json"),
    ("server-json-dot-glob", "cat .*/server.json"),
    ("server-json-sh", "sh -c 'cat .loomkin/server.json'"),
    ("server-json-cd", "cd .loomkin && cat server.json"),
    ("server-json-redirect", "head < .loomkin/server.json"),
]
# Code the guard does not read: only the sandbox stops these.
BEYOND_THE_GUARD = [
    ("python", "{py} -c \"open('{c}/new', 'w').write('x')\""),
    ("python-remove", "{py} -c \"import shutil; shutil.rmtree('{c}')\""),
    ("script-file", "printf 'touch {c}/new' > s.sh; sh s.sh"),
    ("makefile", "printf 'all:\\n\\ttouch {c}/new\\n' > Makefile; make"),
    ("grep-recursive-token", "grep -r web-token ."),
    ("python-reads-token", "{py} -c \"print(open('.loomkin/server.json').read())\""),
    ("python-env", '{py} -c "import os; print(dict(os.environ))"'),
    (
        "python-setsid-later",
        "{py} -c \"import os, subprocess; subprocess.Popen(['sh', '-c', "
        "'sleep 0.3; touch {c}/late'], start_new_session=True)\"",
    ),
]

SECRETS = {
    "OPENAI_API_KEY": "sk-escape-openai-9a8b7c",
    "ANTHROPIC_API_KEY": "sk-ant-escape-6d5e4f",
    "LOOMKIN_TOKEN": "loomkin-escape-token-3c2b",
}
WEB_TOKEN = "web-token-escape-1a0b"


@dataclass(frozen=True, slots=True)
class Scene:
    """A project, its canaries and the secrets the forms must not print."""

    project: Path
    canary: Path
    sibling: Path

    def render(self, template: str) -> str:
        return template.format(c=self.canary, r="../canary", py=sys.executable)

    def snapshot(self) -> dict[str, tuple[int, bytes]]:
        found: dict[str, tuple[int, bytes]] = {}
        for root in (self.canary, self.sibling):
            if not root.exists():
                found[str(root)] = (0, b"removed")
                continue
            found[str(root)] = (root.stat().st_mode, b"")
            for path in sorted(root.rglob("*")):
                data = path.read_bytes() if path.is_file() else b""
                found[str(path)] = (path.lstat().st_mode, data)
        return found


def _canary_base(tmp_path: Path) -> Path:
    # Outside /tmp when possible: the sandbox makes the rest of the file system read-only,
    # and /tmp private, and both must hold.
    var_tmp = Path("/var/tmp")
    return var_tmp if os.access(var_tmp, os.W_OK) else tmp_path


@pytest.fixture
def scene(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    (project / "README").write_text("the project\n")
    (project / ".loomkin").mkdir()
    (project / ".loomkin" / "server.json").write_text(f'{{"token": "{WEB_TOKEN}"}}\n')
    canary = Path(tempfile.mkdtemp(prefix="loomkin-canary-", dir=_canary_base(tmp_path)))
    sibling = tmp_path / "canary"
    for directory in (canary, sibling):
        directory.mkdir(exist_ok=True)
        (directory / "victim").write_text("canary\n")
    try:
        yield Scene(project=project, canary=canary, sibling=sibling)
    finally:
        shutil.rmtree(canary, ignore_errors=True)


async def _attempt(scene: Scene, ctx: ToolContext, mode: str, command: str) -> str:
    if mode == "bwrap-no-guard":
        run = await (await require_bwrap()).run(
            project_root=scene.project, timeout_s=10, output_cap=50_000, shell_command=command
        )
        return run.result.output
    sandbox = await require_bwrap() if mode == "bwrap" else Sandbox(bwrap=None, announce=False)
    deps = BuiltinDeps(shell_policy=ShellPolicy(sandbox=sandbox, output_cap=50_000))
    try:
        return await shell.run(shell.parse_args({"command": command, "timeout_s": 10}), ctx, deps)
    except ToolError as exc:  # refused by the guard, or failed: the message is the output
        return str(exc)


def _assert_contained(scene: Scene, before: dict[str, tuple[int, bytes]], output: str) -> None:
    assert scene.snapshot() == before, "a write outside the project happened"
    for secret in [*SECRETS.values(), WEB_TOKEN]:
        assert secret not in output, f"a secret was printed: {output!r}"


MODES = ["bwrap", "guard-only", "bwrap-no-guard"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("form", "template"), WRITE_FORMS + SECRET_FORMS)
async def test_escape_is_contained(
    scene: Scene, ctx: ToolContext, mode: str, form: str, template: str
) -> None:
    before = scene.snapshot()
    output = await _attempt(scene, ctx, mode, scene.render(template))
    _assert_contained(scene, before, output)


@pytest.mark.parametrize("mode", ["bwrap", "bwrap-no-guard"])
@pytest.mark.parametrize(("form", "template"), BEYOND_THE_GUARD)
async def test_code_the_guard_cannot_read_is_contained_by_the_sandbox(
    scene: Scene, ctx: ToolContext, mode: str, form: str, template: str
) -> None:
    before = scene.snapshot()
    output = await _attempt(scene, ctx, mode, scene.render(template))
    _assert_contained(scene, before, output)


@pytest.mark.parametrize(("form", "template"), WRITE_FORMS)
def test_guard_refuses_every_write_form(scene: Scene, form: str, template: str) -> None:
    with pytest.raises(ToolError, match=r"^Refused to run this command: "):
        check_command(scene.render(template), scene.project, ShellPolicy())


def test_suite_size() -> None:
    assert len(WRITE_FORMS) + len(SECRET_FORMS) >= 50
    assert len({f for f, _ in WRITE_FORMS + SECRET_FORMS + BEYOND_THE_GUARD}) == len(
        WRITE_FORMS + SECRET_FORMS + BEYOND_THE_GUARD
    )
