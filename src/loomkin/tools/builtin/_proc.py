"""Running a child process with a timeout, a bounded output buffer and group kill.

How this works and why: the child runs in its own session (process group), so on a timeout,
or when the calling task is cancelled (an agent cancelled mid-command), the whole group is
killed, grandchildren included, and awaited before we return or re-raise. Output is read
incrementally into a buffer that keeps the head and the tail (errors are usually at the end)
and counts what it dropped, so a chatty command cannot exhaust memory and the output read
before a timeout is still reported.

The output pipe is ours, not asyncio's: on Python 3.11, ``Process.wait()`` only returns once
every pipe of the child is closed, so a grandchild that left the group (``setsid cmd &``)
and kept stdout open would hold the call until it exits. Here, the leader's exit is awaited
on its own, then ``sweep`` (the caller's way to kill what left the group) runs, and reading
stops at the timeout whatever still holds the pipe.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
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
    cwd: Path,
    shell_command: str | None,
    argv: Sequence[str],
    env: dict[str, str] | None,
    output_fd: int,
) -> asyncio.subprocess.Process:
    """Start the child in a new session (its own process group), stdout+stderr on our pipe."""
    if shell_command is not None:
        argv = ["/bin/sh", "-c", shell_command]
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        start_new_session=True,
    )


async def _open_reader(read_fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    return reader, transport


async def _collect(
    process: asyncio.subprocess.Process,
    reader: asyncio.StreamReader,
    buffer: _Capped,
    timeout_s: float,
    sweep: Callable[[], object],
) -> bool:
    """Read the output into ``buffer`` until the child exits; True when the timeout fired."""
    timed_out = False
    finished = False
    drain = asyncio.ensure_future(_drain(reader, buffer))
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await process.wait()
                sweep()  # what left the process group would keep the pipe open
                await drain
                finished = True
        except TimeoutError:
            timed_out = True
    finally:
        if not finished:
            # Timeout or cancellation: kill the whole group, even if the leader already
            # exited, so no grandchild keeps running (or keeps our pipe open).
            _kill_group(process.pid)
            sweep()
        drain.cancel()
        (outcome,) = await asyncio.gather(drain, return_exceptions=True)
        await process.wait()
        if isinstance(outcome, Exception):  # a read error, not our cancellation
            raise outcome
    return timed_out


def _nothing() -> None:
    return None


async def run_process(
    *,
    cwd: Path,
    timeout_s: float,
    output_cap: int,
    shell_command: str | None = None,
    argv: Sequence[str] = (),
    env: dict[str, str] | None = None,
    sweep: Callable[[], object] = _nothing,
) -> ProcessResult:
    """Run ``shell_command`` (through ``/bin/sh``) or ``argv`` and collect its output.

    Args:
        cwd: Working directory.
        timeout_s: Seconds before the process group is killed.
        output_cap: Most characters of output kept (head and tail).
        shell_command: A shell command line; exclusive with ``argv``.
        argv: Program and arguments, run without a shell.
        env: Environment (defaults to this process's).
        sweep: Called when the leader exits and after a kill: kills what left the group.

    Returns:
        The exit code (None on timeout), the capped output and flags.
    """
    read_fd, write_fd = os.pipe()
    try:
        reader, transport = await _open_reader(read_fd)
    except BaseException:
        os.close(write_fd)
        raise
    try:
        try:
            process = await _spawn(cwd, shell_command, argv, env, write_fd)
        finally:
            os.close(write_fd)  # the child holds its copy; EOF comes when every copy closes
        buffer = _Capped(output_cap)
        timed_out = await _collect(process, reader, buffer, timeout_s, sweep)
    finally:
        transport.close()
    output, truncated = buffer.render(output_cap)
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        output=output,
        timed_out=timed_out,
        truncated=truncated,
    )
