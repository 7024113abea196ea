"""Relevance of an insight (or a question) to an agent: who should hear about it.

Score (notes §13): ``min(0.5·K + 0.3·F + 0.2·R, 1)``, rounded to two decimals, where

* K — keyword overlap between the insight and the agent's *current task text*,
  ``|a ∩ b| / min(|a|, |b|)`` over significant words;
* F — the share of the agent's files (paths in its task text and files it touched) the
  insight names;
* R — role fit: 0.8 for code-type insights and coder/reviewer/tester, 0.8 for research-type
  insights and researcher/lead, 0.7 for blockers, 0.3 for any known role, else 0.1.

The Elixir scorer got an agent record without its task, so K and F were always 0 and nobody
ever passed the 0.3 threshold; here the caller always supplies the task text and files.
"""

from __future__ import annotations

from dataclasses import dataclass

from loomkin.coordination.base import file_paths, significant_words

__all__ = ["THRESHOLD", "Profile", "Topic", "score"]

THRESHOLD = 0.3
"""Agents scoring at least this receive the insight."""

_CODE_TYPES = frozenset({"code", "implementation", "fix", "bug", "refactor", "edit", "file_change"})
_RESEARCH_TYPES = frozenset(
    {"discovery", "insight", "finding", "analysis", "research", "observation", "question"}
)
_KNOWN_ROLES = frozenset(
    {"coder", "reviewer", "tester", "researcher", "lead", "concierge", "orienter"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    """What is being routed: an insight's text, type and files."""

    text: str
    kind: str = "insight"
    files: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """What an agent is working on."""

    role: str
    task_text: str = ""
    files: frozenset[str] = frozenset()
    """Files the agent touched (read, wrote or claimed), relative to the project."""
    extra_text: str = ""
    """More words it is known for (for question routing: the insights it wrote)."""


def _keywords(topic: Topic, profile: Profile) -> float:
    a = significant_words(topic.text)
    b = significant_words(f"{profile.task_text}\n{profile.extra_text}")
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def _files(topic: Topic, profile: Profile) -> float:
    theirs = profile.files | file_paths(profile.task_text)
    if not theirs:
        return 0.0
    mine = topic.files | file_paths(topic.text)
    return len(mine & theirs) / len(theirs)


def _role(topic: Topic, profile: Profile) -> float:
    if topic.kind in _CODE_TYPES and profile.role in ("coder", "reviewer", "tester"):
        return 0.8
    if topic.kind in _RESEARCH_TYPES and profile.role in ("researcher", "lead"):
        return 0.8
    if topic.kind == "blocker":
        return 0.7
    return 0.3 if profile.role in _KNOWN_ROLES else 0.1


def score(topic: Topic, profile: Profile) -> float:
    """Return how relevant ``topic`` is to an agent with ``profile`` (0–1)."""
    raw = 0.5 * _keywords(topic, profile) + 0.3 * _files(topic, profile)
    return round(min(raw + 0.2 * _role(topic, profile), 1.0), 2)
