"""Running a child process with a timeout, a bounded output buffer and group kill.

How this works and why: the child runs in its own session (process group), so on a timeout,
or when the calling task is cancelled (an agent cancelled mid-command), the whole group is
killed, grandchildren included, and awaited before we return or re-raise. Output is read
incrementally into a buffer that keeps the head and the tail (errors are usually at the end)
and counts what it dropped, so a chatty command cannot exhaust memory and the output read
before a timeout is still reported.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["ProcessResult", "run_process"]

_CHUNK = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessResult:
    """What a finished (or killed) child process produced."""

    exit_code: int | None
    """The exit status, or None when the process was killed on timeout."""
    output: str
    """Combined stdout and stderr, capped (see ``truncated``)."""
    timed_out: bool
    """True when the timeout fired and the process group was killed."""
    truncated: bool
    """True when characters were dropped from the middle of the output."""


class _Capped:
    """Keeps the first and last ``half`` bytes of a stream and counts the rest."""

    __slots__ = ("dropped", "half", "head", "tail")

    def __init__(self, cap: int) -> None:
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def render(self, cap: int) -> tuple[str, bool]:
        text = (self.head + self.tail).decode("utf-8", errors="replace")
        if self.dropped == 0 and len(text) <= cap:
            return text, False
        head = self.head.decode("utf-8", errors="replace")[: self.half]
        tail = self.tail.decode("utf-8", errors="replace")[-self.half :]
        return f"{head}\n[... output truncated: {self.dropped} bytes omitted ...]\n{tail}", True


async def _drain(stream: asyncio.StreamReader, buffer: _Capped) -> None:
    while chunk := await stream.read(_CHUNK):
        buffer.feed(chunk)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return  # the whole group has already exited


async def _spawn(
    cwd: Path, shell_command: str | None, argv: Sequence[str], env: dict[str, str] | None
) -> asyncio.subprocess.Process:
    """Start the child in a new session (its own process group), stdout+stderr on one pipe."""
    if shell_command is not None:
        return await asyncio.create_subprocess_shell(
            shell_command,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )


async def _collect(process: asyncio.subprocess.Process, buffer: _Capped, timeout_s: float) -> bool:
    """Read the output into ``buffer`` until the child exits; True when the timeout fired."""
    timed_out = False
    finished = False
    try:
        assert process.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                await _drain(process.stdout, buffer)
                await process.wait()
                finished = True
        except TimeoutError:
            timed_out = True
    finally:
        if not finished:
            # Timeout or cancellation: kill the whole group, even if the leader already
            # exited, so no grandchild keeps running (or keeps our pipe open).
            _kill_group(process.pid)
        await process.wait()
    return timed_out


async def run_process(
    *,
    cwd: Path,
    timeout_s: float,
    output_cap: int,
    shell_command: str | None = None,
    argv: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> ProcessResult:
    """Run ``shell_command`` (through ``/bin/sh``) or ``argv`` and collect its output.

    Args:
        cwd: Working directory.
        timeout_s: Seconds before the process group is killed.
        output_cap: Most characters of output kept (head and tail).
        shell_command: A shell command line; exclusive with ``argv``.
        argv: Program and arguments, run without a shell.
        env: Environment (defaults to this process's).

    Returns:
        The exit code (None on timeout), the capped output and flags.
    """
    process = await _spawn(cwd, shell_command, argv, env)
    buffer = _Capped(output_cap)
    timed_out = await _collect(process, buffer, timeout_s)
    output, truncated = buffer.render(output_cap)
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        output=output,
        timed_out=timed_out,
        truncated=truncated,
    )
