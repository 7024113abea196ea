"""Context windows: how many input tokens each model takes in one request.

The figures are the vendors' published windows as of writing; ``[context]`` in
``loomkin.toml`` overrides them (``window_tokens`` for every model, ``windows`` per model).
A model not listed gets :data:`DEFAULT_WINDOW` (local and fake models included): a
conservative size every hosted model takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_WINDOW", "WINDOWS", "context_window"]

DEFAULT_WINDOW = 128_000
"""Tokens assumed for a model this table does not know."""

WINDOWS: Mapping[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "gemma-3-270m": 32_768,
}


def context_window(model_name: str, overrides: Mapping[str, int] | None = None) -> int:
    """Return the context window of ``model_name`` (``"provider:model"`` or a bare name).

    ``overrides`` (from ``[context.windows]``) wins over the table; the longest name the
    model's name starts with is taken, so a dated or sized variant gets its family's window.
    """
    table = {**WINDOWS, **(overrides or {})}
    if model_name in table:
        return table[model_name]
    model = model_name.partition(":")[2] or model_name
    model = model.rsplit("/", 1)[-1]
    best = max((k for k in table if model.startswith(k)), key=len, default=None)
    return table[best] if best is not None else DEFAULT_WINDOW
