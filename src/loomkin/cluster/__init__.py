"""Agents on several workers: NATS JetStream for leases and notifications, Postgres for the log.

The embedded default (one process, in-memory bus, SQLite) needs none of this; see the
README's "Run on several machines".
"""

from loomkin.cluster.bus import BusUnavailable, check_bus_url
from loomkin.cluster.client import ClusterClient, ControlAction, QuestionAsk
from loomkin.cluster.directory import Placement
from loomkin.cluster.hosting import HostOptions, Outcome
from loomkin.cluster.leases import BusLease, LeaseLost
from loomkin.cluster.names import DEFAULT_CLUSTER, ClusterNames
from loomkin.cluster.placement import NoWorkers, WorkerLoad, place, placement_order
from loomkin.cluster.worker import DEFAULT_LEASE_TTL_S, Worker

__all__ = [
    "DEFAULT_CLUSTER",
    "DEFAULT_LEASE_TTL_S",
    "BusLease",
    "BusUnavailable",
    "ClusterClient",
    "ClusterNames",
    "ControlAction",
    "HostOptions",
    "LeaseLost",
    "NoWorkers",
    "Outcome",
    "Placement",
    "QuestionAsk",
    "Worker",
    "WorkerLoad",
    "check_bus_url",
    "place",
    "placement_order",
]
