"""JSON nesting depth found without parsing: the guard in front of every ``json.loads`` of
text a model or a provider wrote."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from loomkin.core.nesting import nesting_exceeds

# Strings full of what a scanner could mistake for structure: brackets, quotes, escapes.
TRICKY = st.text(alphabet=st.sampled_from('[]{}"\\ab:, \n'), max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=40,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(VALUES, st.integers(min_value=0, max_value=12), st.booleans())
def test_the_answer_is_the_parsed_depth_compared_with_the_limit(
    value: object, limit: int, as_bytes: bool
) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=None if limit % 2 else 1)
    checked = text.encode() if as_bytes else text
    assert nesting_exceeds(checked, limit) == (depth(value) > limit)


def test_text_far_deeper_than_the_interpreter_could_parse_is_measured_without_recursion() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    assert nesting_exceeds(deep, 64)
    assert nesting_exceeds(deep.encode(), 199_999)
    assert not nesting_exceeds(deep, 200_000)
    # Many brackets side by side are wide, not deep: the exact scan says so.
    wide = "[" + ",".join(["[]"] * 5_000) + "]"
    assert not nesting_exceeds(wide, 2)
    assert nesting_exceeds(wide, 1)


def test_brackets_inside_strings_do_not_count_but_an_unterminated_string_errs_towards_deep() -> (
    None
):
    quoted = json.dumps({"code": "[" * 500 + '\\"' + "{" * 500})
    assert not nesting_exceeds(quoted, 1)
    # Not JSON at all (the string never ends): counting its brackets can only refuse it.
    assert nesting_exceeds('{"a": "' + "[" * 100, 10)
