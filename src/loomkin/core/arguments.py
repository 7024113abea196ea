r"""Decoding a model's tool-call arguments: strict JSON, bounded, with one kind of error.

How this works and why:

* Tool-call arguments are text a model wrote, so anything can be in them. Python's
  :func:`json.loads` raises more than :class:`json.JSONDecodeError` on such text: a
  ``RecursionError`` for arrays nested a few thousand deep, a plain ``ValueError`` for an
  integer over 4,300 digits, and it accepts ``NaN`` and ``Infinity``, which no provider
  takes back in a later request. :func:`decode_arguments` turns every one of these into an
  :class:`ArgumentsError` whose message says what is wrong, so a caller needs to catch one
  exception and can show the message to the model.
* What it accepts is what every later consumer can carry: a JSON object, nested at most
  :data:`MAX_DEPTH` levels (tool arguments are shallow; deeper values would later overflow
  the stack of pydantic, an encoder or an SDK), with finite numbers and strings that are
  valid Unicode (``"\ud800"`` decodes to a lone surrogate that UTF-8 cannot encode).
* Text nested deeper than that is refused before it is parsed
  (:func:`~loomkin.core.nesting.nesting_exceeds`): parsing it would run the interpreter to
  its recursion limit, where finalizers fail. The check of the decoded value walks it with
  an explicit stack, never by recursion.
"""

from __future__ import annotations

import json
import math

from loomkin.core.nesting import nesting_exceeds

__all__ = ["MAX_DEPTH", "ArgumentsError", "decode_arguments", "json_type_name"]

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in tool arguments (the object itself is 1)."""


class ArgumentsError(ValueError):
    """Tool-call arguments that cannot be used; the message says why, for the model."""


def _reject_constant(name: str) -> object:
    raise ArgumentsError(f"{name} is not valid JSON (use a finite number or a string)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise ArgumentsError(f"the number {shown} is too large for a float")
    return value


def decode_arguments(raw: str, *, max_depth: int = MAX_DEPTH) -> dict[str, object]:
    """Decode ``raw`` as a JSON object of tool arguments (``""`` is ``{}``).

    Raises:
        ArgumentsError: ``raw`` is not JSON, not an object, nested deeper than
            ``max_depth``, holds a number Python will not convert (over 4,300 digits, or a
            float overflowing to infinity), ``NaN``/``Infinity``, or an invalid Unicode
            escape (a lone surrogate).
    """
    if not raw.strip():
        return {}  # models often send "" for a call without arguments
    if nesting_exceeds(raw, max_depth):
        raise ArgumentsError(f"nested too deeply (more than {max_depth} levels)")
    try:
        value: object = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except ArgumentsError:
        raise
    except json.JSONDecodeError as exc:
        raise ArgumentsError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ArgumentsError(f"nested too deeply (more than {max_depth} levels)") from None
    except ValueError:  # int() refusing a number of more than 4,300 digits
        raise ArgumentsError("a number is too long (at most 4,300 digits)") from None
    if not isinstance(value, dict):
        raise ArgumentsError(f"expected a JSON object, got {json_type_name(value)}")
    _check(value, max_depth)
    return value


def _check(value: dict[str, object], max_depth: int) -> None:
    """Check nesting depth and string validity without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise ArgumentsError(f"nested too deeply (more than {max_depth} levels)")
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise ArgumentsError(f"nested too deeply (more than {max_depth} levels)")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ArgumentsError(
            "a string holds an invalid Unicode escape (a lone surrogate such as \\ud800)"
        ) from None


def json_type_name(value: object) -> str:
    """Return how a person names the JSON type of ``value`` ("an array", "null" ...)."""
    match value:
        case list():
            return "an array"
        case str():
            return "a string"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case None:
            return "null"
        case _:
            return type(value).__name__
