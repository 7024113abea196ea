"""Workloads for the swarm benchmark: loading, validation and synthetic task graphs.

A workload is a task graph in the JSON format of ``shared/workloads/README.md``: tasks with
their simulated work (``work_s``), named milestones at fractions of that work and an optional
number of partial-output chunks, and dependencies (``blocks``, ``requires_output`` or
``informs``, optionally on a named milestone of the predecessor). :func:`load_workload`
validates a file and names the first problem it finds (:class:`WorkloadError`);
:func:`synthetic` builds the classic shapes (layered DAG, diamond, wide fan-out, pipeline)
from a seed, so a run is reproducible from its command line alone.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from loomkin.core.records import DepKind
from loomkin.errors import UserError

__all__ = [
    "SHAPES",
    "DepSpec",
    "Shape",
    "TaskSpec",
    "Workload",
    "WorkloadError",
    "load_workload",
    "parse_workload",
    "resolve_workload",
    "synthetic",
    "workload_paths",
    "workloads_dir",
]

Shape = Literal["layered", "diamond", "fanout", "pipeline"]
SHAPES: tuple[Shape, ...] = get_args(Shape)
_KINDS: tuple[str, ...] = ("blocks", "requires_output", "informs")
_ENV = "LOOMKIN_WORKLOADS"


class WorkloadError(UserError):
    """A workload file is missing, is not valid JSON, or breaks the format."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """One task of a workload."""

    id: str
    """Unique name of the task (used as its title on the board)."""
    role: str
    """The role that should do it (``coder``, ``tester`` ...)."""
    work_s: float
    """Simulated seconds of model and tool time the task takes."""
    milestones: dict[str, float] = field(default_factory=dict)
    """Milestone name → fraction of the work at which the owner emits it."""
    partials: int = 0
    """Partial-output chunks streamed, evenly spread: chunk j at j/partials of the work."""

    def events(self) -> list[tuple[float, str, str]]:
        """Milestones and chunks as ``(fraction, kind, name)``, in the order they happen."""
        points = [(f, "milestone", name) for name, f in self.milestones.items()]
        points += [(j / self.partials, "partial", str(j)) for j in range(1, self.partials + 1)]
        return sorted(points)

    def output_fraction(self) -> float:
        """Fraction of the work at which the task first has output (first chunk, or the end)."""
        return 1.0 / self.partials if self.partials else 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DepSpec:
    """One dependency: ``task`` waits for ``on``."""

    task: str
    """The dependent task."""
    on: str
    """The predecessor."""
    kind: DepKind = "blocks"
    """``blocks``, ``requires_output`` or ``informs`` (never waits)."""
    milestone: str | None = None
    """A milestone of ``on`` to wait for instead of its completion (or output)."""
    assumption: float | None = None
    """For speculation: probability that a guess made before the edge is met is right."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """A validated task graph."""

    name: str
    source: str = ""
    tasks: tuple[TaskSpec, ...]
    deps: tuple[DepSpec, ...]

    def task(self, task_id: str) -> TaskSpec:
        """Return the task named ``task_id``."""
        for spec in self.tasks:
            if spec.id == task_id:
                return spec
        raise WorkloadError(f"workload {self.name!r} has no task {task_id!r}")

    def total_work(self) -> float:
        """Sum of every task's work, in simulated seconds."""
        return sum(t.work_s for t in self.tasks)

    def to_json(self) -> dict[str, object]:
        """Return the workload in its file format."""
        return {
            "name": self.name,
            "source": self.source,
            "tasks": [
                {"id": t.id, "role": t.role, "work_s": t.work_s, "milestones": t.milestones}
                | ({"partials": t.partials} if t.partials else {})
                for t in self.tasks
            ],
            "deps": [
                {"task": d.task, "on": d.on, "kind": d.kind, "milestone": d.milestone}
                | ({"assumption": d.assumption} if d.assumption is not None else {})
                for d in self.deps
            ],
        }


# -- locating and loading ------------------------------------------------------------------------


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def workloads_dir() -> Path:
    """The workload folder: ``$LOOMKIN_WORKLOADS``, else ``../shared/workloads`` of the repo."""
    override = os.environ.get(_ENV)
    if override:
        return Path(override).expanduser()
    return _repo_root().parent / "shared" / "workloads"


def workload_paths() -> list[Path]:
    """Every ``*.json`` workload in :func:`workloads_dir`, sorted by name."""
    folder = workloads_dir()
    if not folder.is_dir():
        raise WorkloadError(
            f"workload folder {str(folder)!r} does not exist (set {_ENV} to the folder)"
        )
    return sorted(folder.glob("*.json"))


def resolve_workload(name_or_path: str) -> Path:
    """Return the file for a path, or for a bare name (``httpx``) in :func:`workloads_dir`."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = name_or_path if name_or_path.endswith(".json") else f"{name_or_path}.json"
    candidate = workloads_dir() / name
    if candidate.is_file():
        return candidate
    raise WorkloadError(
        f"no workload {name_or_path!r}: not a file, and not in {str(workloads_dir())!r}"
    )


def load_workload(path: str | Path) -> Workload:
    """Read and validate the workload file at ``path`` (or a bare name, see resolve)."""
    file = resolve_workload(str(path))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"workload {str(file)!r} is not valid JSON: {exc}") from None
    return parse_workload(data, origin=str(file))


# -- validation ----------------------------------------------------------------------------------


def _field(obj: dict[str, object], key: str, kind: type, where: str) -> object:
    if key not in obj:
        raise WorkloadError(f"{where}: missing field {key!r}")
    value = obj[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise WorkloadError(f"{where}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _parse_task(raw: object, where: str) -> TaskSpec:
    if not isinstance(raw, dict):
        raise WorkloadError(f"{where}: a task must be an object, got {raw!r}")
    task_id = str(_field(raw, "id", str, where))
    where = f"{where} ({task_id!r})"
    work = float(_field(raw, "work_s", float, where))  # type: ignore[arg-type]  # checked above
    if work <= 0:
        raise WorkloadError(f"{where}: work_s must be positive, got {work!r}")
    milestones = raw.get("milestones") or {}
    if not isinstance(milestones, dict):
        raise WorkloadError(f"{where}: milestones must be an object of name → fraction")
    for name, frac in milestones.items():
        if not isinstance(frac, int | float) or isinstance(frac, bool) or not 0 < frac <= 1:
            raise WorkloadError(f"{where}: milestone {name!r} fraction must be in (0, 1]")
    partials = raw.get("partials", 0)
    if not isinstance(partials, int) or isinstance(partials, bool) or partials < 0:
        raise WorkloadError(f"{where}: partials must be a non-negative integer")
    return TaskSpec(
        id=task_id,
        role=str(raw.get("role") or "coder"),
        work_s=work,
        milestones={str(k): float(v) for k, v in milestones.items()},
        partials=partials,
    )


def _parse_dep(raw: object, where: str, tasks: dict[str, TaskSpec]) -> DepSpec:
    if not isinstance(raw, dict):
        raise WorkloadError(f"{where}: a dependency must be an object, got {raw!r}")
    task = str(_field(raw, "task", str, where))
    on = str(_field(raw, "on", str, where))
    kind = raw.get("kind", "blocks")
    milestone = raw.get("milestone")
    for name in (task, on):
        if name not in tasks:
            raise WorkloadError(f"{where}: unknown task {name!r}")
    if task == on:
        raise WorkloadError(f"{where}: task {task!r} depends on itself")
    if kind not in _KINDS:
        raise WorkloadError(f"{where}: kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    if milestone is not None and (
        not isinstance(milestone, str) or milestone not in tasks[on].milestones
    ):
        raise WorkloadError(f"{where}: task {on!r} has no milestone {milestone!r}")
    assumption = raw.get("assumption")
    if assumption is not None and not (
        isinstance(assumption, int | float) and 0 <= assumption <= 1
    ):
        raise WorkloadError(f"{where}: assumption must be a probability, got {assumption!r}")
    return DepSpec(
        task=task,
        on=on,
        kind=kind,
        milestone=milestone,
        assumption=None if assumption is None else float(assumption),
    )


def parse_workload(data: object, *, origin: str = "<workload>") -> Workload:
    """Validate decoded JSON as a workload; raise :class:`WorkloadError` naming the problem."""
    if not isinstance(data, dict):
        raise WorkloadError(f"{origin}: a workload must be a JSON object")
    raw_tasks = data.get("tasks")
    raw_deps = data.get("deps", [])
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise WorkloadError(f"{origin}: 'tasks' must be a non-empty list")
    if not isinstance(raw_deps, list):
        raise WorkloadError(f"{origin}: 'deps' must be a list")
    tasks: dict[str, TaskSpec] = {}
    for i, raw in enumerate(raw_tasks):
        spec = _parse_task(raw, f"{origin}: tasks[{i}]")
        if spec.id in tasks:
            raise WorkloadError(f"{origin}: duplicate task id {spec.id!r}")
        tasks[spec.id] = spec
    deps = tuple(_parse_dep(raw, f"{origin}: deps[{i}]", tasks) for i, raw in enumerate(raw_deps))
    workload = Workload(
        name=str(data.get("name") or Path(origin).stem),
        source=str(data.get("source") or ""),
        tasks=tuple(tasks.values()),
        deps=deps,
    )
    _check_acyclic(workload, origin)
    return workload


def _check_acyclic(workload: Workload, origin: str) -> None:
    waits: dict[str, list[str]] = {t.id: [] for t in workload.tasks}
    for dep in workload.deps:
        if dep.kind != "informs":
            waits[dep.task].append(dep.on)
    state: dict[str, int] = {}
    for start in waits:
        stack = [(start, iter(waits[start]))]
        state[start] = state.get(start, 0) or 1
        if state[start] == 2:
            continue
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise WorkloadError(f"{origin}: dependency cycle through {nxt!r} and {node!r}")
            elif state.get(nxt) is None:
                state[nxt] = 1
                stack.append((nxt, iter(waits[nxt])))


# -- synthetic shapes ----------------------------------------------------------------------------


def _work(rng: random.Random) -> float:
    return round(rng.uniform(60.0, 600.0), 1)


def _task(name: str, rng: random.Random, *, role: str = "coder", partials: int = 0) -> TaskSpec:
    return TaskSpec(
        id=name, role=role, work_s=_work(rng), milestones={"interface": 0.25}, partials=partials
    )


def _edge(task: str, on: str) -> DepSpec:
    return DepSpec(task=task, on=on, kind="requires_output", milestone="interface")


def synthetic(shape: Shape, *, size: int = 40, seed: int = 0) -> Workload:
    """Build a synthetic workload of about ``size`` tasks.

    Args:
        shape: ``layered`` (random DAG in levels), ``diamond`` (one root, a wide middle,
            one sink), ``fanout`` (one root, many independent leaves, one join) or
            ``pipeline`` (chains of stages streaming partial output to the next).
        size: Roughly how many tasks.
        seed: Seed of the random work sizes and edges.
    """
    if size < 4:
        raise WorkloadError(f"a synthetic workload needs size >= 4, got {size}")
    rng = random.Random(f"{shape}:{size}:{seed}")
    match shape:
        case "layered":
            tasks, deps = _layered(size, rng)
        case "diamond" | "fanout":
            tasks, deps = _fan(size, rng, milestones=shape == "diamond")
        case "pipeline":
            tasks, deps = _pipeline(size, rng)
        case _:
            raise WorkloadError(f"unknown shape {shape!r}; shapes: {', '.join(SHAPES)}")
    return Workload(
        name=f"{shape}-{size}-s{seed}",
        source=f"synthetic {shape} graph, size {size}, seed {seed}",
        tasks=tuple(tasks),
        deps=tuple(deps),
    )


def _layered(size: int, rng: random.Random) -> tuple[list[TaskSpec], list[DepSpec]]:
    levels = max(2, round(size**0.5))
    names = [f"L{i % levels}.{i // levels}" for i in range(size)]
    by_level: dict[int, list[str]] = {}
    for name in names:
        by_level.setdefault(int(name[1:].split(".")[0]), []).append(name)
    tasks = [_task(n, rng) for n in names]
    deps = []
    for level in range(1, levels):
        earlier = [n for lv in range(level) for n in by_level[lv]]
        for name in by_level[level]:
            for on in rng.sample(earlier, k=min(len(earlier), rng.randint(1, 3))):
                deps.append(_edge(name, on))
    return tasks, deps


def _fan(
    size: int, rng: random.Random, *, milestones: bool
) -> tuple[list[TaskSpec], list[DepSpec]]:
    middle = [f"w{i}" for i in range(size - 2)]
    tasks = [_task("root", rng), *(_task(n, rng) for n in middle), _task("join", rng)]
    deps = []
    for name in middle:
        deps.append(_edge(name, "root") if milestones else DepSpec(task=name, on="root"))
        deps.append(DepSpec(task="join", on=name))
    return tasks, deps


def _pipeline(size: int, rng: random.Random) -> tuple[list[TaskSpec], list[DepSpec]]:
    stages = 4
    chains = max(1, size // stages)
    tasks, deps = [], []
    for c in range(chains):
        for s in range(stages):
            tasks.append(_task(f"c{c}.s{s}", rng, partials=4))
            if s:
                deps.append(DepSpec(task=f"c{c}.s{s}", on=f"c{c}.s{s - 1}", kind="requires_output"))
    return tasks, deps
