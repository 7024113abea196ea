"""The whole exception tree of Loomkin.

Every error Loomkin raises on purpose derives from :class:`LoomkinError`. The tree keeps
three families apart, because callers handle them differently:

* **API misuse and bad input** — the caller can fix it: :class:`UserError` and below
  (bad config, a refused state transition, a path outside the project, an unknown agent).
* **Runtime failures** — something broke underneath: :class:`StoreError` (corrupt or
  undecodable data, schema drift; :class:`LeaseError`: another process writes the session),
  :class:`ProviderError` (the model's service failed), :class:`AgentCrashed`,
  :class:`BudgetExceeded`.
* **Model-facing signals** — not failures of Loomkin at all: :class:`ToolError` is caught by
  the agent loop and shown to the model as a readable tool result so it can correct itself.

::

    LoomkinError
    ├── UserError
    │   ├── ConfigError
    │   ├── NotFound
    │   ├── InvalidTransition
    │   ├── TaskCycleError
    │   ├── PolicyRefused
    │   └── PathEscapeError
    ├── StoreError
    │   ├── EventDecodeError
    │   ├── SchemaVersionError
    │   ├── CorruptStoreError
    │   ├── ConcurrencyError
    │   └── LeaseError
    │       ├── LeaseHeld
    │       └── StaleEpoch
    ├── ProviderError
    │   ├── RateLimited
    │   ├── ProviderTimeout
    │   ├── ProviderUnavailable
    │   └── MissingCredentials
    ├── ProjectionFailed
    ├── AgentCrashed
    ├── BudgetExceeded
    ├── McpServerFailed
    └── ToolError
"""

from __future__ import annotations

__all__ = [
    "AgentCrashed",
    "BudgetExceeded",
    "ConcurrencyError",
    "ConfigError",
    "CorruptStoreError",
    "EventDecodeError",
    "InvalidTransition",
    "LeaseError",
    "LeaseHeld",
    "LoomkinError",
    "McpServerFailed",
    "MissingCredentials",
    "NotFound",
    "PathEscapeError",
    "PolicyRefused",
    "ProjectionFailed",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "SchemaVersionError",
    "StaleEpoch",
    "StoreError",
    "TaskCycleError",
    "ToolError",
    "UserError",
]


class LoomkinError(Exception):
    """Root of every error Loomkin raises on purpose."""


class UserError(LoomkinError):
    """The caller asked for something that cannot be done as asked; the message says why."""


class ConfigError(UserError):
    """``loomkin.toml`` or a command-line option is invalid; the message names the key."""


class NotFound(UserError):
    """A session, team, agent, task or other named thing does not exist."""


class InvalidTransition(UserError):
    """A state machine refused a transition (for example a task going from completed to pending)."""


class TaskCycleError(UserError):
    """Adding this dependency would close a cycle in the task graph."""


class PolicyRefused(UserError):
    """A policy (communication, permission, team depth) refused the action."""


class PathEscapeError(UserError):
    """A path resolves outside the project root (``..``, absolute path or symlink)."""


class StoreError(LoomkinError):
    """The event store failed or holds data it cannot use."""


class EventDecodeError(StoreError):
    """A stored event cannot be decoded into a known event type."""


class SchemaVersionError(StoreError):
    """A stored event or database has a schema version this code does not understand."""


class CorruptStoreError(StoreError):
    """The store's file or tables are damaged (not a database, truncated, wrong layout)."""


class ConcurrencyError(StoreError):
    """An append expected a stream version that is no longer current."""


class LeaseError(StoreError):
    """Another writer owns (or has taken over) the session; this one must not write to it.

    Not a :class:`ConcurrencyError`: that one means "re-read and retry", while a lease error
    means "stop writing this session" (retrying would only be refused again).
    """


class LeaseHeld(LeaseError):
    """A session's lease is held by another live writer; the message names it.

    Attributes:
        session_id: the session asked for.
        holder: the current holder's id.
        host: the host the holder runs on.
        pid: the holder's process id on that host.
        since: when the holder acquired the lease (Unix seconds).
        expires_at: when the lease expires unless renewed (Unix seconds).
        epoch: the holder's epoch.
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str,
        holder: str,
        host: str,
        pid: int,
        since: float,
        expires_at: float,
        epoch: int,
    ):
        super().__init__(message)
        self.session_id = session_id
        self.holder = holder
        self.host = host
        self.pid = pid
        self.since = since
        self.expires_at = expires_at
        self.epoch = epoch


class StaleEpoch(LeaseError):
    """A write or renewal carried a lease epoch that is no longer current: it was refused.

    Attributes:
        session_id: the session written to.
        epoch: the epoch the writer presented.
        current_epoch: the session's current epoch (0 when it was never leased).
    """

    def __init__(self, message: str, *, session_id: str, epoch: int, current_epoch: int):
        super().__init__(message)
        self.session_id = session_id
        self.epoch = epoch
        self.current_epoch = current_epoch


class ProviderError(LoomkinError):
    """The model provider failed; ``transient`` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status


class RateLimited(ProviderError):
    """The provider answered 429 (or an equivalent overload code)."""

    def __init__(self, message: str, *, status: int | None = 429):
        super().__init__(message, transient=True, status=status)


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""

    def __init__(self, message: str):
        super().__init__(message, transient=True)


class ProviderUnavailable(ProviderError):
    """The provider answered 5xx or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message, transient=True, status=status)


class MissingCredentials(ProviderError):
    """No API key was found for the provider; the message says which variable to set."""


class ProjectionFailed(LoomkinError):
    """A projection raised while applying an event: the runtime stopped (fail-stop).

    The event is in the store; the projection that could not apply it would drift from the
    log if the runtime went on, so the log is closed and every pending append fails with this
    error. ``projection`` and ``position`` say where to look.
    """

    def __init__(self, projection: str, position: int, kind: str, cause: BaseException) -> None:
        super().__init__(
            f"projection {projection!r} failed on event {position} ({kind}): "
            f"{type(cause).__name__}: {cause}; the runtime stopped so that its state cannot "
            "drift from the log (the event is stored; fix the cause and reopen to replay)"
        )
        self.projection = projection
        self.position = position
        self.kind = kind


class AgentCrashed(LoomkinError):
    """An agent's loop failed with an unexpected error and was handed to its supervisor."""


class BudgetExceeded(LoomkinError):
    """A token or cost budget would be exceeded by the next model call."""

    def __init__(self, message: str, *, scope: str):
        super().__init__(message)
        self.scope = scope


class McpServerFailed(LoomkinError):
    """An MCP tool server could not be started (or restarted); the message names it and why."""


class ToolError(LoomkinError):
    """A tool could not do what the model asked; the message is shown to the model as-is."""
