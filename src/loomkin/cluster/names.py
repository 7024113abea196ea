"""Where a cluster keeps its state on NATS: bucket names and subjects, all under one prefix.

Every name is derived from the cluster's name (``--cluster``, default ``loomkin``), so several
clusters (or test runs) can share one NATS server without seeing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loomkin.errors import UserError

__all__ = ["DEFAULT_CLUSTER", "ClusterNames", "agent_key", "token"]

DEFAULT_CLUSTER = "loomkin"
"""The cluster name when none is given."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True, slots=True)
class ClusterNames:
    """The buckets and subjects of the cluster ``cluster``."""

    cluster: str = DEFAULT_CLUSTER

    def __post_init__(self) -> None:
        if not _NAME.match(self.cluster):
            raise UserError(
                f"invalid cluster name {self.cluster!r}: use 1 to 64 letters, digits, '_' or '-'"
            )

    @property
    def workers_bucket(self) -> str:
        """Key-value bucket of live workers and their load (entries expire with the TTL)."""
        return f"{self.cluster}_workers"

    @property
    def leases_bucket(self) -> str:
        """Key-value bucket of leases: who hosts which session's agents (TTL, heartbeats)."""
        return f"{self.cluster}_leases"

    @property
    def every_worker_report(self) -> str:
        """Wildcard of the subjects a worker's directory report goes out on (one per worker).

        A key-value ``put`` is a message on ``$KV.<bucket>.<key>``: subscribing to it hears
        every worker's report (every third of the TTL) as it is written, without a read.
        """
        return f"$KV.{self.workers_bucket}.*"

    @property
    def placements_bucket(self) -> str:
        """Key-value bucket of the sessions the cluster must keep running (no TTL)."""
        return f"{self.cluster}_placements"

    def worker_open(self, worker_id: str) -> str:
        """Request subject: worker ``worker_id`` opens a new session and hosts its agents."""
        return f"{self.cluster}.worker.{token(worker_id)}.open"

    def session_control(self, session_id: str) -> str:
        """Request subject: a control for an agent, answered by the worker hosting it."""
        return f"{self.cluster}.session.{token(session_id)}.control"

    def session_action(self, session_id: str) -> str:
        """Request subject: a budget, task or speculation action, answered by its worker.

        One subject for the whole vocabulary of :mod:`loomkin.cluster.actions`.
        """
        return f"{self.cluster}.session.{token(session_id)}.action"

    def session_permission(self, session_id: str) -> str:
        """Request subject: a permission prompt, answered by whoever runs the session."""
        return f"{self.cluster}.session.{token(session_id)}.permission"

    def session_prompts_wanted(self, session_id: str) -> str:
        """Notification subject: someone began answering the session's permission prompts.

        The hosting worker sends the prompts still open again on :meth:`session_permission`:
        one asked before that listener subscribed (or while it reconnected) reaches it too.
        """
        return f"{self.cluster}.session.{token(session_id)}.prompts-wanted"

    def session_question(self, session_id: str) -> str:
        """Request subject: a question an agent asks the user, answered by whoever runs it.

        The reply is the answer; no reply before the question's deadline means none.
        """
        return f"{self.cluster}.session.{token(session_id)}.question"

    def session_events(self, session_id: str) -> str:
        """Notification subject: the session's log grew (the payload is the newest position)."""
        return f"{self.cluster}.session.{token(session_id)}.events"

    @property
    def every_session_permission(self) -> str:
        """Wildcard of :meth:`session_permission`: any session's permission prompts."""
        return f"{self.cluster}.session.*.permission"

    @property
    def every_session_question(self) -> str:
        """Wildcard of :meth:`session_question`: any session's questions to the user."""
        return f"{self.cluster}.session.*.question"

    @property
    def every_session_events(self) -> str:
        """Wildcard of :meth:`session_events`: any session's log grew (a web app watches it)."""
        return f"{self.cluster}.session.*.events"

    @property
    def handover(self) -> str:
        """Notification subject: a lease was given back; workers look for work at once."""
        return f"{self.cluster}.handover"

    def worker_agents(self, worker_id: str) -> str:
        """Request subject: worker ``worker_id`` takes (or gives back) the lease of an agent.

        A session's host asks it before it sends the agent's first model call there.
        """
        return f"{self.cluster}.worker.{token(worker_id)}.agents"

    def worker_calls(self, worker_id: str) -> str:
        """Subject of model calls for the agents worker ``worker_id`` holds.

        The request's reply subject is where the call's stream goes, message by message.
        """
        return f"{self.cluster}.worker.{token(worker_id)}.calls"

    def worker_tools(self, worker_id: str) -> str:
        """Request subject: a tool call (the shell) of an agent worker ``worker_id`` holds."""
        return f"{self.cluster}.worker.{token(worker_id)}.tools"

    def worker_cancels(self, worker_id: str) -> str:
        """Notification subject: the host abandoned a call it sent worker ``worker_id``."""
        return f"{self.cluster}.worker.{token(worker_id)}.cancels"

    def inbox(self, worker_id: str) -> str:
        """One-way message subject of a worker (used by the cross-worker throughput bench)."""
        return f"{self.cluster}.worker.{token(worker_id)}.inbox"


def agent_key(session_id: str, agent_id: str) -> str:
    """The lease key of one agent of a session (in the leases bucket, beside the session's)."""
    return f"{token(session_id)}.{token(agent_id)}"


def token(value: str) -> str:
    """Check that ``value`` can be one token of a NATS subject or a key of a bucket."""
    if not _TOKEN.match(value):
        raise UserError(
            f"{value!r} cannot name a worker or session on the bus: use letters, digits, '_' or '-'"
        )
    return value
