"""How deep JSON text nests, found without parsing it.

Why: :func:`json.loads` recurses once per level of arrays and objects and stops with a
``RecursionError`` only at the interpreter's recursion limit. Reaching that limit is not
harmless: a garbage collection that happens there runs finalizers (a generator's
``finally``, a future's "exception never retrieved" report) with no stack left, and they
fail as "Exception ignored in ..." instead of doing their work. Text from a model or a
provider that nests deeper than any real payload is therefore refused before it is parsed.

:func:`nesting_exceeds` is cheap on ordinary text: when the text holds no more brackets
than the limit it cannot nest deeper, which a count of two characters proves. Only text
with more brackets than that is scanned, with its strings (where brackets mean nothing)
cut out first. Unterminated strings count as bracket text, so the answer errs towards
"too deep" only for text that is not valid JSON anyway.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

__all__ = ["nesting_exceeds"]

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_STRING_B = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_NOT_BRACKET_B = re.compile(rb"[^\[\]{}]++")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
_BLOCK = 4096


def nesting_exceeds(text: str | bytes, limit: int) -> bool:
    """Return whether the arrays and objects of JSON ``text`` nest more than ``limit`` deep.

    ``text`` may be a whole document or one line of a stream (bytes as UTF-8). A value that
    is not an array or an object has depth 0; ``[]`` has depth 1.
    """
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= limit:
            return False
        brackets = _NOT_BRACKET_B.sub(b"", _STRING_B.sub(b"", text))
    else:
        if text.count("[") + text.count("{") <= limit:
            return False
        brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii")
    # The running depth, a block at a time and all of it in C: deep text is found within
    # its first block, and wide text costs a pass over its brackets.
    depth = 0
    for start in range(0, len(brackets), _BLOCK):
        steps = array("b", brackets[start : start + _BLOCK].translate(_STEPS))
        if max(accumulate(steps, initial=depth)) > limit:
            return True
        depth += sum(steps)
    return False
