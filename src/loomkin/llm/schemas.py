"""Compact tool schemas: what a model needs to call a tool, without pydantic's boilerplate.

Every request re-sends the tool schemas, so their size is paid on every call. Pydantic's
JSON Schema repeats each property's name as a ``title``, spells an optional argument as
``anyOf [X, null]`` with ``default: null``, and a tool's docstring may run to paragraphs.
:func:`compact_parameters` keeps only what changes how the model calls the tool (types,
enums, bounds, required names, descriptions, non-null defaults); validation still uses the
tool's full schema, so nothing is lost but bytes. :func:`short_description` keeps a
description's first paragraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON

__all__ = ["compact_parameters", "short_description"]


def short_description(text: str) -> str:
    """The first paragraph of ``text``, on one line."""
    first = text.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def compact_parameters(schema: dict[str, JSON]) -> dict[str, JSON]:
    """Return ``schema`` without titles, null branches and null defaults (see the module)."""
    compacted = _compact(schema)
    assert isinstance(compacted, dict)
    return compacted


def _compact(value: JSON) -> JSON:
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, JSON] = {}
    for key, item in value.items():
        if key == "title" and isinstance(item, str):
            continue  # pydantic's copy of the property's name
        if key == "default" and item is None:
            continue
        if key == "properties" and isinstance(item, dict):
            out[key] = {name: _compact(prop) for name, prop in item.items()}
            continue
        out[key] = _compact(item)
    branches = out.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        # An optional argument: leaving it out means null, so the null branch says nothing.
        other = next(b for b in branches if b != {"type": "null"})
        if isinstance(other, dict):
            del out["anyOf"]
            out = {**other, **out}
    return out
