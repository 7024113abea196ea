"""The conflict detector: file and region claims, stale writes, approaches and decisions.

How this works and why:

* It is a projection of the log. ``ToolCallStarted``/``ToolCallCompleted`` tell it who wrote
  which file and when, ``RegionClaimed`` who intends to change which lines, ``TaskAssigned``
  what each agent is about to do, ``DecisionLogged`` what each agent decided.
* Writes are checked *before* they land: the agent calls :meth:`ConflictDetector.before_write`
  right before ``file_write``/``file_edit`` run. Writing a file that another agent changed
  since you last read it (the stale-read guard, using the file tools' ``FileAccessLog``) is
  refused, and the writer reads why in the tool result; overlapping an other agent's region
  claim, or editing a file another agent edited within the last five minutes, is reported
  but the write proceeds.
* Every conflict is one ``ConflictDetected`` event (de-duplicated), an urgent
  ``file_conflict`` message to the other agents involved and a ``conflict_detected`` (high)
  message to their lead. Approach conflicts (notes §9: add↔remove, remove↔change on a shared
  target) and contradicting decisions (two significant words in common, different choices)
  are found from the listener and reported the same way.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.coordination.base import file_paths, significant_words
from loomkin.core.events import (
    ConflictDetected,
    DecisionLogged,
    Event,
    RegionClaimed,
    TaskAssigned,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.core.taskstates import ACTIVE_STATUSES
from loomkin.ids import AgentId, new_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.coordination.base import Context, Member
    from loomkin.core.events.base import JSON
    from loomkin.core.events.coordination import ConflictType
    from loomkin.tools.base import FileAccessLog

__all__ = ["WRITE_TOOLS", "ConflictDetector", "intent_of", "targets_of"]

WRITE_TOOLS = frozenset({"file_write", "file_edit"})
READ_TOOLS = frozenset({"file_read"})
_TERMINAL = frozenset({"completed", "failed", "cancelled", "pending"})
_INTENTS = (
    ("remove", ("remove", "delete", "drop", "deprecate")),
    ("add", ("add", "create", "write", "implement", "build")),
    ("change", ("change", "refactor", "rename", "move", "migrate", "replace", "update", "rewrite")),
)
_CONTRADICTORY = frozenset(
    {("add", "remove"), ("remove", "add"), ("remove", "change"), ("change", "remove")}
)
_IDENT = re.compile(
    r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b"  # dotted module or attribute: app.models.User
    r"|\b[A-Za-z_]\w*\(\)"  # a call: parse()
    r"|\b[A-Za-z_]\w*/\d+\b"  # fun/arity: parse/2
)


def _forms(word: str) -> set[str]:
    """``word`` and its likely base forms (removes, removed, removing → remove)."""
    forms = {word}
    for suffix in ("s", "es", "d", "ed", "ing"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            forms |= {stem, f"{stem}e"}
            if len(stem) > 2 and stem[-1] == stem[-2]:  # dropped, dropping → drop
                forms.add(stem[:-1])
    return forms


def intent_of(text: str) -> str:
    """The first intent class whose verb appears in ``text`` (remove, add, change, unknown)."""
    words: set[str] = set()
    for word in re.findall(r"[a-z]+", text.lower()):
        words |= _forms(word)
    for intent, verbs in _INTENTS:
        if words & set(verbs):
            return intent
    return "unknown"


def targets_of(text: str) -> frozenset[str]:
    """File paths, dotted names, ``name()`` calls and ``fun/arity`` references in ``text``."""
    paths = file_paths(text)
    rest = text
    for path in sorted(paths, key=len, reverse=True):  # "app/models.py" is not "models.py"
        rest = rest.replace(path, " ")
    idents = {m.group(0).removesuffix("()") for m in _IDENT.finditer(rest)}
    # "e.g." and "i.e." are not module names
    names = {i for i in idents if "/" in i or any(len(part) > 1 for part in i.split("."))}
    return paths | frozenset(names)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Write:
    agent_id: str
    at: float


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    if a[1] == 0 or b[1] == 0:
        return True
    return a[0] <= b[1] and b[0] <= a[1]


def _span(text: str) -> str:
    return "the whole file" if text.endswith("-0") else f"lines {text}"


class ConflictDetector:
    """Finds conflicts between agents of one session and reports them (see module docs)."""

    def __init__(self, ctx: Context, project_root: Path, *, window_s: float = 300.0) -> None:
        self.ctx = ctx
        self.root = project_root
        self.window_s = window_s
        self.touched: dict[str, set[str]] = {}
        """Agent id → files it read, wrote or claimed (relative paths)."""
        self._started: dict[str, tuple[str, str, str]] = {}
        self._writes: dict[str, list[_Write]] = {}
        self._claims: dict[str, list[RegionClaimed]] = {}
        self._decisions: list[DecisionLogged] = []
        self._seen: set[tuple[str, ...]] = set()
        self.detected: list[ConflictDetected] = []

    # -- projection -------------------------------------------------------------------------------

    def on_event(self, event: Event, *, live: bool) -> None:
        """Fold one event in; ``live`` is False during a replay (nothing is reported then)."""
        match event:
            case ToolCallStarted(call_id=cid, tool=tool, target=target, agent_id=aid):
                self._on_started(cid, tool, target, aid)
            case ToolCallCompleted(call_id=cid, outcome="ok"):
                self._on_written(cid)
            case RegionClaimed(path=path, agent_id=aid):
                kept = [c for c in self._claims.get(path, []) if c.agent_id != aid]
                self._claims[path] = [*kept, event]
                self.touched.setdefault(aid, set()).add(path)
            case TaskStatusChanged(task_id=tid, status=status) if status in _TERMINAL:
                for path, claims in self._claims.items():
                    self._claims[path] = [c for c in claims if c.task_id != tid]
            case TaskAssigned() if live:
                self._check_approach(event)
            case DecisionLogged() if event.node_type in ("decision", "option"):
                if live and event.agent_id is not None:
                    self._check_decision(event)
                self._decisions.append(event)
            case ConflictDetected():
                self._seen.add((event.conflict_type, *sorted(event.agents), event.path or ""))
                self.detected.append(event)
            case _:
                pass

    def _relative(self, target: str) -> str | None:
        """``target`` relative to the shared tree; ``None`` outside it.

        A speculative agent's writes land in its own workspace under ``.loomkin/``: that
        overlap with the shared tree is intended, so it is not tracked here (real conflicts
        surface when the workspace is merged).
        """
        try:
            rel = Path(target).relative_to(self.root)
        except ValueError:
            return None
        return None if rel.parts[:1] == (".loomkin",) else str(rel)

    def _on_started(self, call_id: str, tool: str, target: str, agent_id: str) -> None:
        rel = self._relative(target) if target else None
        if rel is None or tool not in WRITE_TOOLS | READ_TOOLS:
            return
        self.touched.setdefault(agent_id, set()).add(rel)
        if tool in WRITE_TOOLS:
            self._started[call_id] = (agent_id, tool, rel)

    def _on_written(self, call_id: str) -> None:
        started = self._started.pop(call_id, None)
        if started is None:
            return
        agent_id, _tool, rel = started
        self._writes.setdefault(rel, []).append(_Write(agent_id=agent_id, at=self.ctx.clock.now()))

    def last_writer(self, rel: str) -> str | None:
        """The agent that last changed ``rel`` through a file tool, if any."""
        writes = self._writes.get(rel)
        return writes[-1].agent_id if writes else None

    def claims(self, rel: str) -> list[RegionClaimed]:
        """Active claims on ``rel``."""
        return list(self._claims.get(rel, []))

    # -- the pre-write hook -----------------------------------------------------------------------

    async def before_write(
        self,
        writer: Member,
        tool: str,
        arguments: Mapping[str, JSON],
        target: str,
        access: FileAccessLog,
    ) -> str | None:
        """Check a write before it lands; return the refusal text when it must not run."""
        rel = self._relative(target) if target else None
        if tool not in WRITE_TOOLS or rel is None:
            return None
        refusal = await self._stale_guard(writer, rel, Path(target), access)
        if refusal is not None:
            return refusal
        region = await asyncio.to_thread(_edit_region, Path(target), tool, arguments)
        await self._check_claims(writer, rel, region)
        await self._check_recent(writer, rel)
        return None

    async def _stale_guard(
        self, writer: Member, rel: str, path: Path, access: FileAccessLog
    ) -> str | None:
        other = self.last_writer(rel)
        if other is None or other == writer.agent_id:
            return None
        mtime = await asyncio.to_thread(_mtime_ns, path)
        seen = access.last_read(writer.agent_id, path)
        if mtime is None or seen == mtime:
            return None
        who = self.ctx.member(other)
        name = who.name if who else other
        text = (
            f"{writer.name} tried to change {rel!r}, which {name} changed after {writer.name} "
            "last read it; the write was stopped before it landed."
        )
        await self.report("stale_write", writer, [other], text, path=rel, blocked=True)
        return (
            f"Blocked before writing: {rel!r} was changed by {name} since you last read it, so "
            "your write would overwrite their work. Read the file again with file_read and "
            f"redo your change on top of theirs (or coordinate with {name} via peer_message)."
        )

    async def _check_claims(self, writer: Member, rel: str, region: tuple[int, int]) -> None:
        for claim in self._claims.get(rel, []):
            if claim.agent_id == writer.agent_id:
                continue
            if _overlaps(region, (claim.start_line, claim.end_line)):
                span = _span(f"{claim.start_line}-{claim.end_line}")
                text = (
                    f"{writer.name} is changing {rel!r} inside the region {claim.agent_name} "
                    f"claimed ({span})."
                )
                await self.report("region", writer, [claim.agent_id], text, path=rel)

    async def _check_recent(self, writer: Member, rel: str) -> None:
        now = self.ctx.clock.now()
        recent = {
            w.agent_id
            for w in self._writes.get(rel, [])
            if now - w.at <= self.window_s and w.agent_id != writer.agent_id
        }
        for other in sorted(recent):
            who = self.ctx.member(other)
            name = who.name if who else other
            text = f"Both {writer.name} and {name} are editing {rel!r}."
            await self.report("file", writer, [other], text, path=rel)

    # -- claims -----------------------------------------------------------------------------------

    async def claim(self, member: Member, rel: str, start: int, end: int) -> list[RegionClaimed]:
        """Record a claim; return the other agents' claims it overlaps (reported as conflicts)."""
        overlapping = [
            c
            for c in self._claims.get(rel, [])
            if c.agent_id != member.agent_id and _overlaps((start, end), (c.start_line, c.end_line))
        ]
        await self.ctx.log.append(
            RegionClaimed(
                session_id=self.ctx.session_id,
                agent_id=member.agent_id,
                agent_name=member.name,
                team_id=member.team_id,
                path=rel,
                start_line=start,
                end_line=end,
                task_id=member.task_id,
            )
        )
        for c in overlapping:
            text = (
                f"{member.name} claimed {_span(f'{start}-{end}')} of {rel!r}, overlapping "
                f"{c.agent_name}'s claim ({_span(f'{c.start_line}-{c.end_line}')})."
            )
            await self.report("region", member, [c.agent_id], text, path=rel)
        return overlapping

    # -- approach and decision conflicts (from the listener) --------------------------------------

    def _check_approach(self, event: TaskAssigned) -> None:
        text = self.ctx.task_text(event.task_id)
        mine, intent = targets_of(text), intent_of(text)
        if not mine or intent == "unknown":
            return
        title = text.split("\n", 1)[0]
        for view in self.ctx.tasks.board.tasks():
            if view.session_id != self.ctx.session_id or view.task_id == event.task_id:
                continue
            if view.owner is None or view.owner.agent_id == event.owner:
                continue
            if view.status not in ACTIVE_STATUSES:
                continue
            other_text = f"{view.title}\n{view.description}"
            shared = mine & targets_of(other_text)
            theirs = intent_of(other_text)
            if shared and (intent, theirs) in _CONTRADICTORY:
                desc = (
                    f"{event.owner_name}'s task {title!r} {_VERBS[intent]} "
                    f"{', '.join(sorted(shared))}, while {view.owner.name}'s task "
                    f"{view.title!r} {_VERBS[theirs]} the same."
                )
                self._spawn_report("approach", event.owner, view.owner.agent_id, desc)

    def _check_decision(self, event: DecisionLogged) -> None:
        words = significant_words(event.title)
        others = [
            d
            for d in self._decisions
            if d.team_id == event.team_id and d.agent_id not in (None, event.agent_id)
        ][-20:]
        for d in others:
            if len(words & significant_words(d.title)) < 2:
                continue
            if _choice(d) is not None and _choice(d) == _choice(event):
                continue
            assert event.agent_id is not None
            assert d.agent_id is not None
            desc = (
                f"{self._name(event.agent_id)} decided {event.title!r}, "
                f"which contradicts {self._name(d.agent_id)}'s decision {d.title!r}."
            )
            self._spawn_report("decision", event.agent_id, d.agent_id, desc)

    def _name(self, agent_id: str) -> str:
        member = self.ctx.member(agent_id)
        return member.name if member is not None else "another agent"

    def _spawn_report(self, kind: ConflictType, first: str, second: str, desc: str) -> None:
        actor = self.ctx.member(first)
        if actor is None:
            return
        key = (kind, *sorted((first, second)), "")
        if key in self._seen:
            return
        self._seen.add(key)

        async def run() -> None:
            await self.report(kind, actor, [second], desc, force=True)

        self.ctx.timers.run(f"conflict:{new_id('c_')}", run)

    # -- reporting --------------------------------------------------------------------------------

    async def report(
        self,
        kind: ConflictType,
        actor: Member,
        others: list[str],
        description: str,
        *,
        path: str | None = None,
        blocked: bool = False,
        force: bool = False,
    ) -> bool:
        """Record a conflict and tell everyone involved; False when it was already reported."""
        agents = [actor.agent_id, *others]
        key = (kind, *sorted(agents), path or "")
        if key in self._seen and not (force or blocked):
            return False
        self._seen.add(key)
        event = ConflictDetected(
            session_id=self.ctx.session_id,
            conflict_id=new_id("conf_"),
            conflict_type=kind,
            team_id=actor.team_id,
            agents=tuple(agents),
            description=description,
            path=path,
            blocked=blocked,
        )
        await self.ctx.log.append(event, *self._notices(event, actor))
        return True

    def _notices(self, event: ConflictDetected, actor: Member) -> list[Event]:
        data: dict[str, JSON] = {"conflict_id": event.conflict_id, "path": event.path}
        advice = _ADVICE.get(event.conflict_type, _ADVICE["file"])
        notes: list[Event] = []
        for agent_id in event.agents:
            if event.blocked and agent_id == actor.agent_id:
                continue  # the writer reads the refusal in its tool result
            notes.append(
                self.ctx.messages.message(
                    "file_conflict",
                    f"{_PREFIX.get(event.conflict_type, '')}{event.description}\n{advice}",
                    to_agent=AgentId(agent_id),
                    from_name="conflict detector",
                    data=data,
                )
            )
        involved = set(event.agents)
        for lead in self.ctx.escalation_chain(actor.team_id)[:1]:
            if lead.agent_id not in involved:
                names = [m.name for a in event.agents if (m := self.ctx.member(a)) is not None]
                notes.append(
                    self.ctx.messages.message(
                        "conflict_detected",
                        f"{_LABELS[event.conflict_type]} between {', '.join(names)}: "
                        f"{event.description}",
                        to_agent=lead.agent_id,
                        from_name="conflict detector",
                        data=data,
                    )
                )
        return notes


_VERBS = {"remove": "removes", "add": "adds to", "change": "changes"}
_LABELS: dict[str, str] = {
    "file": "File conflict",
    "region": "Overlapping region claims",
    "stale_write": "Stale write stopped",
    "approach": "Approach conflict",
    "decision": "Decision conflict",
}
_PREFIX = {"approach": "Approach conflict: ", "decision": "Decision conflict: "}
"""What the agents' notice starts with when its header (file conflict) does not say it."""
_ADVICE: dict[str, str] = {
    "file": (
        "Stop and check before you continue: re-read the file, then agree with the other "
        "agent (peer_message) who changes what."
    ),
    "approach": (
        "Stop and check before you continue: agree with the other agent (peer_message) on "
        "one approach, or ask your lead to decide."
    ),
    "decision": (
        "Agree with the other agent (peer_message) which decision stands, or settle it as a "
        "team with propose_vote, before acting on it."
    ),
}


def _choice(d: DecisionLogged) -> object:
    meta = d.metadata or {}
    return meta.get("winner", meta.get("chosen"))


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _edit_region(path: Path, tool: str, arguments: Mapping[str, JSON]) -> tuple[int, int]:
    """The lines a write touches: the edited block for ``file_edit``, else the whole file."""
    old = arguments.get("old_string")
    if tool != "file_edit" or not isinstance(old, str) or not path.is_file():
        return (1, 0)
    text = path.read_text(encoding="utf-8", errors="replace")
    index = text.find(old)
    if index < 0:
        return (1, 0)
    start = text.count("\n", 0, index) + 1
    return (start, start + old.count("\n"))
