"""Where shell and git commands run: a bubblewrap sandbox, or the guard-only fallback.

How this works and why: a command the model wrote must not change anything outside the
project, read Loomkin's secrets, reach the network (unless ``[shell] network = true``) or
outlive its tool call, whatever the command guard missed. On Linux, bubblewrap gives exactly
that without root: the command runs with

* the whole file system read-only (``--ro-bind / /``), the project root bound read-write on
  top, the project's ``.git`` read-only again (so no hook, ``core.fsmonitor`` or alias can be
  planted for the next git command outside the sandbox), its ``loomkin.toml`` read-only
  (the next session's permissions) and its ``.loomkin`` hidden;
* a private ``/tmp``, ``/run`` and ``/dev`` (no Docker socket, no session bus, no ssh agent),
  a fresh ``/proc``, all capabilities dropped (root inside cannot remount anything);
* new PID, IPC, UTS and (unless allowed) network namespaces. The PID namespace is what makes
  "nothing outlives the call" hold: when its first process exits, or the tool kills the
  process group at the timeout, or Loomkin dies (``--die-with-parent``), the kernel kills
  every process in it, ``setsid cmd &`` included. ``--new-session`` stops a command from
  pushing keystrokes into a terminal (TIOCSTI).

The environment is reduced to an allowlist in both modes (:func:`child_environment`): no API
keys, no ``LOOMKIN_TOKEN``. Where ``bwrap`` is missing or cannot create namespaces (some
containers), the first command says so once (a logged warning and a line in its result) and
commands run directly, guarded by the command guard alone. There the process group is killed
as before, and processes that left it (``setsid``) are found by a marker in their environment
and killed when the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.tools.builtin._proc import ProcessResult, run_process
from loomkin.tools.paths import CONFIG_FILE

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BWRAP",
    "Sandbox",
    "SandboxRun",
    "bwrap_flags",
    "child_environment",
    "default_sandbox",
    "kill_marked_processes",
]

logger = logging.getLogger(__name__)

BWRAP = "/usr/bin/bwrap"
"""Where Debian and most distributions install bubblewrap."""
SANDBOX_HOME = "/tmp"
"""``$HOME`` inside the sandbox: the private, throw-away ``/tmp``."""

# Variables that describe the terminal, the locale or how tools should behave, never who
# the user is or what they may access (the user's Python flags and CI included).
_PASSTHROUGH = frozenset(
    {
        *("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "COLORTERM", "NO_COLOR"),
        *("CI", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8"),
    }
)
# Names that hold secrets: OPENAI_API_KEY, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD...
# (matched on whole name parts, so GIT_AUTHOR_NAME is not mistaken for an auth secret).
_SECRET_NAME = re.compile(
    r"(?i)(?:^|_)(?:[a-z]*key|[a-z]*token|secrets?|passw(?:or)?d|pass|credentials?|auth|"
    r"cookie|session)(?:_|$)"
)
_FIXED = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "EDITOR": "true",
}
_MARKER = "LOOMKIN_SHELL_RUN"
_PROBE_TIMEOUT_S = 10.0


def child_environment(home: str, *, extra: Sequence[str] = ()) -> dict[str, str]:
    """The environment of a command: an allowlist of this process's, never a secret.

    Args:
        home: The ``HOME`` the command gets (somewhere harmless).
        extra: More variable names to pass through (git's identity for the git tool).
    """
    env: dict[str, str] = {}
    for name, value in os.environ.items():
        allowed = name in _PASSTHROUGH or name.startswith("LC_") or name in extra
        if allowed and not _SECRET_NAME.search(name):
            env[name] = value
    env.setdefault("PATH", os.defpath)
    env.update(_FIXED)
    env["HOME"] = home
    return env


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxRun:
    """The result of one command, and how it ran."""

    result: ProcessResult
    """Exit code, capped output, timeout flag."""
    sandboxed: bool
    """True when bubblewrap confined the command."""
    notice: str | None
    """Set on the first unsandboxed run: a line telling the model (and user) so."""


class Sandbox:
    """Runs commands in bubblewrap where it works, and says once when it does not.

    One instance per process is enough (:func:`default_sandbox`): whether bubblewrap works is
    a fact about the machine, probed on first use and cached.

    Args:
        bwrap: Path of the ``bwrap`` executable; None runs every command unsandboxed (the
            guard-only mode, for tests and for machines known to lack namespaces).
        announce: Say (once) when commands run unsandboxed; False when the caller chose
            the guard-only mode and already knows.
    """

    __slots__ = ("_announced", "_bwrap", "_reason", "_works")

    def __init__(self, *, bwrap: str | None = BWRAP, announce: bool = True) -> None:
        self._bwrap = bwrap
        self._works: bool | None = None if bwrap is not None else False
        self._reason: str | None = None if bwrap is not None else "no bwrap executable given"
        self._announced = not announce

    async def available(self) -> bool:
        """True when commands run in bubblewrap (probed on first use, then cached)."""
        if self._works is None and self._bwrap is not None:
            # Two first calls may both probe: harmless, and no lock tied to one event loop.
            self._reason = await _probe_bwrap(self._bwrap)
            self._works = self._reason is None
        return bool(self._works)

    @property
    def unavailable_reason(self) -> str | None:
        """Why commands run unsandboxed (None when bubblewrap works or was not probed)."""
        return self._reason

    async def run(
        self,
        *,
        project_root: Path,
        timeout_s: float,
        output_cap: int,
        shell_command: str | None = None,
        argv: Sequence[str] = (),
        network: bool = False,
        writable_git: bool = False,
        home: str | None = None,
        passthrough: Sequence[str] = (),
    ) -> SandboxRun:
        """Run ``shell_command`` (with ``/bin/sh -c``) or ``argv`` in the project.

        Args:
            project_root: The writable root (the project, or a speculation worktree).
            timeout_s: Seconds before everything the command started is killed.
            output_cap: Most characters of output kept (head and tail).
            shell_command: A shell command line; exclusive with ``argv``.
            argv: Program and arguments, run without a shell.
            network: Keep the network (the shell's ``[shell] network``).
            writable_git: Let the command write the repository's ``.git`` (the git tool).
            home: ``HOME`` for the command; default a private, empty directory.
            passthrough: Extra environment variable names to pass (never secrets).
        """
        command = ["/bin/sh", "-c", shell_command] if shell_command is not None else list(argv)
        if await self.available():
            assert self._bwrap is not None
            root, flags = await asyncio.to_thread(
                _prepare, project_root, network=network, writable_git=writable_git
            )
            result = await run_process(
                cwd=root,
                timeout_s=timeout_s,
                output_cap=output_cap,
                argv=[self._bwrap, *flags, "--", *command],
                env=child_environment(home or SANDBOX_HOME, extra=passthrough),
            )
            return SandboxRun(result=result, sandboxed=True, notice=None)
        root = await asyncio.to_thread(Path.resolve, project_root)
        result = await _run_unsandboxed(
            root,
            command,
            timeout_s=timeout_s,
            output_cap=output_cap,
            home=home,
            extra=passthrough,
        )
        return SandboxRun(result=result, sandboxed=False, notice=self._announce())

    def _announce(self) -> str | None:
        if self._announced:
            return None
        self._announced = True
        logger.warning(
            "Shell commands run without the bubblewrap sandbox (%s); only the command guard "
            "protects this machine",
            self._reason,
        )
        return (
            f"[note: no working bubblewrap sandbox on this machine ({self._reason}); shell "
            "commands run directly, checked only by the command guard]"
        )


@functools.cache
def default_sandbox() -> Sandbox:
    """The process-wide sandbox (bubblewrap at :data:`BWRAP`), created on first use."""
    return Sandbox()


_RESOLVER_DIRS = ("/run/systemd/resolve", "/run/resolvconf", "/run/NetworkManager")
_NAMESPACES = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")
_LIFETIME = ("--die-with-parent", "--new-session", "--cap-drop", "ALL")


def _prepare(project_root: Path, *, network: bool, writable_git: bool) -> tuple[Path, list[str]]:
    root = Path(os.path.realpath(project_root))
    return root, bwrap_flags(root, network=network, writable_git=writable_git)


def bwrap_flags(root: Path, *, network: bool, writable_git: bool) -> list[str]:
    """The bubblewrap options confining a command to ``root`` (see the module docstring)."""
    flags = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for hidden in ("/run", "/var/run"):
        if os.path.isdir(hidden) and not os.path.islink(hidden):
            flags += ["--tmpfs", hidden]
    if network:
        for keep in _RESOLVER_DIRS:  # /etc/resolv.conf often points into /run
            flags += ["--ro-bind-try", keep, keep]
    flags += ["--bind", str(root), str(root)]
    git = root / ".git"
    if writable_git:
        for linked in _linked_git_dirs(git):
            flags += ["--bind", str(linked), str(linked)]
    elif os.path.lexists(git):
        flags += ["--ro-bind", str(git), str(git)]
    config = root / CONFIG_FILE
    if os.path.isfile(config):
        flags += ["--ro-bind", str(config), str(config)]
    state = root / ".loomkin"
    if os.path.isdir(state):
        flags += ["--tmpfs", str(state), "--remount-ro", str(state)]
    elif os.path.lexists(state):
        flags += ["--ro-bind", "/dev/null", str(state)]
    flags += [*_NAMESPACES, *([] if network else ["--unshare-net"]), *_LIFETIME]
    return [*flags, "--chdir", str(root)]


def _linked_git_dirs(git: Path) -> list[Path]:
    """A worktree's ``.git`` file points at its git dir and the common dir, outside root."""
    try:
        text = git.read_text(encoding="utf-8") if git.is_file() else ""
    except OSError:
        return []  # unreadable: git will report it itself
    if not text.startswith("gitdir:"):
        return []
    gitdir = (git.parent / text.removeprefix("gitdir:").strip()).resolve()
    found = [gitdir]
    common = gitdir / "commondir"
    if common.is_file():
        found.append((gitdir / common.read_text(encoding="utf-8").strip()).resolve())
    return [d for d in found if d.is_dir()]


async def _probe_bwrap(bwrap: str) -> str | None:
    """None when bubblewrap can create our namespaces here, else why not."""
    if not os.access(bwrap, os.X_OK):
        return f"{bwrap} is not installed"
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    argv += [*_NAMESPACES, "--unshare-net", *_LIFETIME, "--", "/bin/true"]
    result = await run_process(
        cwd=Path("/"),
        timeout_s=_PROBE_TIMEOUT_S,
        output_cap=2000,
        argv=argv,
        env=child_environment("/"),
    )
    if result.timed_out:
        return f"bwrap did not finish within {_PROBE_TIMEOUT_S:g} s"
    if result.exit_code != 0:
        detail = result.output.strip().splitlines()[-1:] or [f"exit code {result.exit_code}"]
        return f"bwrap cannot create namespaces here: {detail[0]}"
    return None


async def _run_unsandboxed(
    root: Path,
    command: list[str],
    *,
    timeout_s: float,
    output_cap: int,
    home: str | None,
    extra: Sequence[str],
) -> ProcessResult:
    private = await asyncio.to_thread(tempfile.mkdtemp, prefix="loomkin-home-")
    marker = uuid.uuid4().hex
    env = child_environment(home or private, extra=extra)
    env["TMPDIR"] = private
    env[_MARKER] = marker
    # The sweep is synchronous on purpose: it must finish even while the task is being
    # cancelled, and /proc is in memory, so a scan takes a few milliseconds.
    try:
        return await run_process(
            cwd=root,
            timeout_s=timeout_s,
            output_cap=output_cap,
            argv=command,
            env=env,
            sweep=functools.partial(kill_marked_processes, marker),
        )
    finally:
        kill_marked_processes(marker)
        await asyncio.to_thread(shutil.rmtree, private, ignore_errors=True)


def kill_marked_processes(marker: str, *, rounds: int = 5) -> int:
    """SIGKILL every process whose environment holds this run's marker; return how many.

    A command that left its process group (``setsid cmd &``) keeps the environment it was
    started with, marker included. Repeats while it still finds some, since a process may
    fork while the scan runs.
    """
    needle = f"{_MARKER}={marker}".encode()
    killed = 0
    for _ in range(rounds):
        found = [pid for pid in _process_ids() if needle in _environ_of(pid)]
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += len(found)
        if not found:
            break
    return killed


def _process_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except FileNotFoundError:
        return []  # no /proc (not Linux): nothing to sweep


def _environ_of(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return []  # exited meanwhile, or another user's process we may not read
