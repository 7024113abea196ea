"""Tool-call arguments are decoded strictly, with one kind of error whatever the model sent."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomkin.core.arguments import MAX_DEPTH, ArgumentsError, decode_arguments


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", "nested too deeply"),
        ('{"a": ' + '{"b": ' * 900 + "1" + "}" * 900 + "}", "nested too deeply"),
        ('{"n": ' + "9" * 4301 + "}", "too long"),
        ('{"n": NaN}', "NaN is not valid JSON"),
        ('{"n": -Infinity}', "-Infinity is not valid JSON"),
        ('{"n": 1e999}', "too large for a float"),
        ('{"s": "\\ud800"}', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ("[1]", "got an array"),
        ("1", "got a number"),
        ('"x"', "got a string"),
        ("null", "got null"),
        ("true", "got a boolean"),
        ('{"a": 1', "not valid JSON"),
        ('{"a": 1} {"b": 2}', "not valid JSON"),
    ],
)
def test_bad_arguments_raise_one_readable_error(raw: str, message: str) -> None:
    with pytest.raises(ArgumentsError, match=message):
        decode_arguments(raw)


def test_empty_arguments_are_an_empty_object() -> None:
    assert decode_arguments("") == {}
    assert decode_arguments("  \n") == {}


def test_the_deepest_nesting_allowed_decodes() -> None:
    depth = MAX_DEPTH - 1  # the object itself is level 1
    raw = '{"a": ' + "[" * depth + "]" * depth + "}"
    assert decode_arguments(raw)["a"] == _nested(depth)


def _nested(depth: int) -> object:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON, max_size=5))
def test_any_shallow_json_object_round_trips(value: dict[str, object]) -> None:
    assert decode_arguments(json.dumps(value)) == value


@given(st.text(max_size=200))
def test_any_text_decodes_or_raises_arguments_error_only(raw: str) -> None:
    error: ArgumentsError | None = None
    try:
        value: object = decode_arguments(raw)
    except ArgumentsError as exc:  # the only exception allowed; it says what is wrong
        error, value = exc, None
    assert isinstance(value, dict) if error is None else str(error)
