"""Event base class, registry and JSON codec.

How this works and why:

* Every event is a frozen, slotted, keyword-only dataclass that subclasses :class:`Event`.
  Its ``kind`` field is a ``Literal`` discriminator and its ``VERSION`` class variable is the
  schema version of its payload. Event classes are registered explicitly with
  :func:`register` (no name-derived dispatch).
* Payload fields hold only JSON values: ``str``, ``int``, ``float``, ``bool``, ``None``,
  tuples of those, and ``dict[str, JSON]``. No object references, so an event can cross a
  process boundary (a NATS bus, a Postgres store) unchanged.
* :func:`encode_event` gives ``(kind, version, json_text)``; :func:`decode_event` checks the
  kind, the version and the field names before it builds the dataclass, and raises
  :class:`~loomkin.errors.EventDecodeError` / :class:`~loomkin.errors.SchemaVersionError`
  naming the problem. A store that meets one bad row reports it and loses nothing else.
* :class:`RecordedEvent` is the envelope a store hands back: the global position, the
  stream and the version within it, the event id and the record time.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from loomkin.errors import EventDecodeError, SchemaVersionError
from loomkin.ids import EventId, SessionId

__all__ = [
    "JSON",
    "Event",
    "NewEvent",
    "RecordedEvent",
    "decode_event",
    "encode_event",
    "event_class",
    "event_kinds",
    "register",
]

JSON = None | bool | int | float | str | tuple["JSON", ...] | list["JSON"] | dict[str, "JSON"]
"""A JSON value as it may appear in an event payload."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event: an immutable fact about one session."""

    kind: str
    """Discriminator; each subclass narrows it to a ``Literal``."""
    session_id: SessionId
    """The session the event belongs to (the UI feed and replays filter on it)."""

    VERSION: ClassVar[int] = 1
    """Schema version of the payload; bumped when a field changes meaning or shape."""

    def stream(self) -> str:
        """Name of the stream the event is appended to (``"session:<id>"`` by default)."""
        return f"session:{self.session_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event on its way into the store, with its id and the time it happened."""

    event_id: EventId
    recorded_at: float
    """Unix seconds (from the runtime's clock, which may be virtual)."""
    event: Event


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedEvent:
    """An event as the store acknowledged it."""

    position: int
    """Global position in the log, starting at 1, strictly increasing, without gaps."""
    stream: str
    stream_version: int
    """Position within its stream, starting at 1."""
    event_id: EventId
    recorded_at: float
    event: Event


_REGISTRY: dict[str, type[Event]] = {}
_TUPLE_FIELDS: dict[type[Event], frozenset[str]] = {}
E = TypeVar("E", bound=type[Event])


def register(cls: E) -> E:
    """Register an event class under its ``kind`` (use as a class decorator)."""
    kind_field = cls.__dataclass_fields__["kind"]
    kind = kind_field.default
    if not isinstance(kind, str):
        raise TypeError(f"event class {cls.__name__} needs a default for its 'kind' field")
    if kind in _REGISTRY and _REGISTRY[kind] is not cls:
        raise TypeError(f"event kind {kind!r} registered twice")
    _REGISTRY[kind] = cls
    hints = typing.get_type_hints(cls)
    _TUPLE_FIELDS[cls] = frozenset(
        name for name, hint in hints.items() if _is_tuple_hint(hint) and name != "VERSION"
    )
    return cls


def _is_tuple_hint(hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return True
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_tuple_hint(arg) for arg in typing.get_args(hint))
    return False


def event_class(kind: str) -> type[Event]:
    """Return the class registered for ``kind``; raises :class:`EventDecodeError` if none."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise EventDecodeError(f"unknown event kind {kind!r}") from None


def event_kinds() -> frozenset[str]:
    """Return every registered event kind."""
    return frozenset(_REGISTRY)


def _to_json(value: object) -> object:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def encode_event(event: Event) -> tuple[str, int, str]:
    """Return ``(kind, schema version, JSON text of the payload)`` for ``event``."""
    payload = {
        f.name: _to_json(getattr(event, f.name))
        for f in dataclasses.fields(event)
        if f.name != "kind"
    }
    return event.kind, type(event).VERSION, json.dumps(payload, separators=(",", ":"))


def _freeze(value: object) -> object:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def decode_event(kind: str, version: int, data: str | bytes | Mapping[str, Any]) -> Event:
    """Build the event for a stored row.

    Raises:
        EventDecodeError: the kind is unknown, the text is not JSON, or fields are wrong.
        SchemaVersionError: the stored version differs from the class's ``VERSION``.
    """
    cls = event_class(kind)
    if version != cls.VERSION:
        raise SchemaVersionError(
            f"event kind {kind!r} has schema version {version}, this code reads version "
            f"{cls.VERSION}"
        )
    if isinstance(data, str | bytes):
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise EventDecodeError(f"event kind {kind!r}: payload is not JSON ({exc})") from None
    else:
        payload = dict(data)
    if not isinstance(payload, dict):
        raise EventDecodeError(f"event kind {kind!r}: payload is not a JSON object")
    names = {f.name for f in dataclasses.fields(cls)} - {"kind"}
    unknown = set(payload) - names
    if unknown:
        raise EventDecodeError(f"event kind {kind!r}: unknown fields {sorted(unknown)}")
    tuples = _TUPLE_FIELDS[cls]
    fields = {k: (_freeze(v) if k in tuples else v) for k, v in payload.items()}
    try:
        return cls(**fields)  # type: ignore[arg-type]  # field names were checked above
    except TypeError as exc:
        raise EventDecodeError(f"event kind {kind!r}: {exc}") from None
