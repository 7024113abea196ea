"""The connection to NATS and the cluster's key-value buckets.

``nats-py`` comes with the ``scale`` extra; it is imported here only, and only when a
cluster is used, so the embedded default (one process, in-memory bus) never needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loomkin.errors import ConfigError, UserError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

    from loomkin.cluster.names import ClusterNames

__all__ = [
    "NO_RESPONDERS",
    "Buckets",
    "BusUnavailable",
    "check_bus_url",
    "connect",
    "open_buckets",
    "stop_if_cancelled",
]

logger = logging.getLogger(__name__)

NO_RESPONDERS = "503"
"""The ``Status`` header NATS answers a message with when nobody subscribes to its subject."""


class BusUnavailable(UserError):
    """The NATS server named by ``--bus`` cannot be reached, or has no JetStream."""


def stop_if_cancelled() -> None:
    """Raise :class:`asyncio.CancelledError` if the running task was asked to stop.

    On Python 3.11, ``asyncio.wait_for`` (which nats-py's requests use) returns the result
    instead of raising when the cancellation arrives just as the reply does: the task's
    ``cancel()`` is lost, and a loop meant to run until cancelled runs on, so whoever waits
    for it (closing a worker, a hosted session, the web app's view) waits forever. Such a
    loop calls this once per turn; the request to stop is still counted on the task
    (``Task.cancelling``). Only for tasks that never go on after a cancellation on purpose.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def check_bus_url(url: str) -> str:
    """Return ``url`` if it names a NATS server (``nats://host:port``), else explain.

    Raises:
        UserError: not a ``nats://`` or ``tls://`` URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise UserError(f"--bus must be a NATS URL such as nats://127.0.0.1:4222, not {url!r}")
    return url


FIRST_CONNECT_S = 5.0
"""How long the first connection may take. After a drop the client retries for ever (it
must: the server may be restarting); a first connection that fails is an error at once."""


async def connect(url: str, *, name: str = "loomkin", timeout_s: float = FIRST_CONNECT_S) -> Client:
    """Connect to the NATS server at ``url``; reconnect on its own after a drop.

    The first connection fails at its first error (a refused or unreachable server), or
    after ``timeout_s`` without an answer: a wrong ``--bus`` never hangs.

    Raises:
        UserError: ``url`` is not a NATS URL.
        BusUnavailable: no server answers there.
        ConfigError: the ``scale`` extra (``nats-py``) is not installed.
    """
    check_bus_url(url)
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - the dev environment has it
        raise ConfigError(
            "the cluster needs the NATS client: pip install 'loomkin[scale]'"
        ) from exc

    loop = asyncio.get_running_loop()
    first_error: asyncio.Future[Exception] = loop.create_future()

    async def on_error(exc: Exception) -> None:
        logger.debug("NATS: %s", exc)
        if not first_error.done():
            first_error.set_result(exc)

    connecting = loop.create_task(
        nats.connect(
            url,
            name=name,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=on_error,
        ),
        name=f"nats-connect:{name}",
    )
    try:
        racing: list[asyncio.Future[Any]] = [connecting, first_error]
        await asyncio.wait(racing, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not connecting.done():  # an error, the timeout, or our caller gave up
            connecting.cancel()
            await asyncio.wait([connecting])
    where = f"cannot reach the NATS server at {url} (--bus)"
    if not connecting.cancelled():
        if (failure := connecting.exception()) is None:
            return connecting.result()
        raise BusUnavailable(f"{where}: {failure or type(failure).__name__}") from failure
    if first_error.done():
        error = first_error.result()
        raise BusUnavailable(f"{where}: {error or type(error).__name__}") from error
    raise BusUnavailable(f"{where}: no answer within {timeout_s:g} s")


class Buckets:
    """The cluster's key-value buckets (see :class:`~loomkin.cluster.names.ClusterNames`).

    ``ttl_s`` is the leases' (and worker entries') time to live.
    """

    __slots__ = ("leases", "placements", "ttl_s", "workers")

    def __init__(
        self, *, workers: KeyValue, leases: KeyValue, placements: KeyValue, ttl_s: float
    ) -> None:
        self.workers = workers
        self.leases = leases
        self.placements = placements
        self.ttl_s = ttl_s


async def open_buckets(js: JetStreamContext, names: ClusterNames, *, ttl_s: float) -> Buckets:
    """Bind the cluster's buckets, creating them with ``ttl_s`` on first use.

    Raises:
        UserError: ``ttl_s`` is not positive, or the cluster's buckets exist with another
            TTL (every worker of a cluster must use the same one).
        BusUnavailable: the server has no JetStream.
    """
    if not ttl_s > 0 or ttl_s == float("inf"):
        raise UserError(f"the lease TTL must be a positive number of seconds, got {ttl_s!r}")
    try:
        workers = await _bucket(js, names.workers_bucket, ttl_s)
        leases = await _bucket(js, names.leases_bucket, ttl_s)
        placements = await _bucket(js, names.placements_bucket, None)
    except UserError:
        raise
    except Exception as exc:
        raise BusUnavailable(f"the NATS server has no usable JetStream: {exc}") from exc
    return Buckets(workers=workers, leases=leases, placements=placements, ttl_s=ttl_s)


async def _bucket(js: JetStreamContext, bucket: str, ttl_s: float | None) -> KeyValue:
    from nats.js.api import KeyValueConfig, StorageType
    from nats.js.errors import BucketNotFoundError, NotFoundError

    try:
        kv = await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        config = KeyValueConfig(bucket=bucket, ttl=ttl_s, history=1, storage=StorageType.FILE)
        with contextlib.suppress(Exception):  # another process created it meanwhile: bind
            return await js.create_key_value(config)
        kv = await js.key_value(bucket)
    status = await kv.status()
    have = status.ttl or None
    if ttl_s is not None and (have is None or abs(have - ttl_s) > 1e-3):
        raise UserError(
            f"the cluster's bucket {bucket!r} has a TTL of {have} s, not {ttl_s} s: every "
            "worker of a cluster must use the same --lease-ttl (or use another --cluster)"
        )
    return kv
