"""Test helpers for the cluster: the NATS server the tests use, and scratch clusters.

Like PostgreSQL, the NATS server is real (127.0.0.1:4222 with JetStream, or
``$LOOMKIN_TEST_NATS_URL``); a test that needs it is skipped with the reason when it does not
answer, except under ``CI``, where it fails.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import unittest
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loomkin.cluster.bus import connect
from loomkin.cluster.names import ClusterNames

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["nats_test_url", "scratch_cluster"]

NATS_DEFAULT = "nats://127.0.0.1:4222"


@functools.cache
def _probe_nats() -> tuple[str | None, str]:
    url = os.environ.get("LOOMKIN_TEST_NATS_URL") or NATS_DEFAULT
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=3):
            return url, ""
    except OSError as exc:
        return None, f"{url}: {exc}"


def nats_test_url() -> str:
    """Return the URL of the test NATS server, or skip the calling test (fail under ``CI``).

    Raises:
        unittest.SkipTest: no server answers and ``$CI`` is not set.
        AssertionError: no server answers and ``$CI`` is set.
    """
    url, why = _probe_nats()
    if url is not None:
        return url
    if os.environ.get("CI"):
        raise AssertionError(f"CI is set but the NATS server is unreachable: {why}")
    raise unittest.SkipTest(f"the NATS server is unreachable ({why})")


@contextlib.asynccontextmanager
async def scratch_cluster(url: str | None = None) -> AsyncIterator[str]:
    """Yield a fresh cluster name; delete its buckets at exit."""
    server = url or nats_test_url()
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        names = ClusterNames(name)
        nc = await connect(server)
        try:
            js = nc.jetstream()
            for bucket in (names.workers_bucket, names.leases_bucket, names.placements_bucket):
                with contextlib.suppress(Exception):  # never created: nothing to delete
                    await js.delete_key_value(bucket)
        finally:
            await nc.close()
