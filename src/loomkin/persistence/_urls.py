"""Store URLs in messages: never show a password."""

from __future__ import annotations

import re

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for error messages and logs)."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)
