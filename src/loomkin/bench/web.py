"""``python -m loomkin.bench web``: the web app in real Chromium on sessions of given sizes.

How it works: for each size, a fresh SQLite store gets a live session (six agents, a task
graph with milestones, the Concierge) whose log is filled with ``N`` events of the kinds a
real run writes (model calls with their requests, tool calls, messages), then the web app
is served on it (uvicorn, in the same event loop as the runtime) and opened in headless
Chromium through Playwright:

* ``reload_to_interactive_s``: median of three reloads, from navigation start to the page's
  ``loomkin-interactive`` mark (the view and the newest feed rows rendered, the live stream
  asked for);
* ``p95_long_task_ms`` / ``max_long_task_ms`` / ``long_tasks``: the main thread's long tasks
  (the browser's ``longtask`` entries, 50 ms and over) while 10 events/s stream in for
  ``--stream-s`` seconds (0 when there is none), a window in which the benchmark runs no
  script of its own in the page; ``slowest_frames``: the longest animation frames then;
* ``steer_click_ms``: from a click on an agent's Steer button to the next frame, while the
  stream goes on;
* ``dom_nodes`` and ``js_heap_mb`` (after a forced garbage collection) at the end.

Each size is measured in the same run, so the figures compare side by side: the goals are
that the largest size is as quick as the smallest and its heap no bigger.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loomkin.core.events import (
    MessageSent,
    ModelCallCompleted,
    ModelCallStarted,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.errors import UserError
from loomkin.service import Loomkin
from loomkin.testing.internals import event_log
from loomkin.testing.models import FunctionModel, Reply

if TYPE_CHECKING:
    from loomkin.core.events import Event
    from loomkin.service import Session

__all__ = ["Filler", "build_session", "run_web", "stream_events", "web_table"]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
AGENTS = ("alice", "bob", "carol", "dave", "erin", "frank")
_LONG_TASKS = """
window.__longTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
  }).observe({ type: "longtask", buffered: true });
} catch (_) {}
window.__frames = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const layout = e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0;
      const scripts = e.scripts.map((x) => `${x.invoker} ${Math.round(x.duration)}ms`);
      window.__frames.push({ at: e.startTime, ms: Math.round(e.duration),
        layout_ms: Math.round(layout), scripts: scripts.slice(0, 4) });
    }
  }).observe({ type: "long-animation-frame", buffered: true });
} catch (_) {}
"""


class Filler:
    """Makes events of the kinds a run writes, for the session's agents, in call order."""

    def __init__(self, session: Session) -> None:
        self.session_id = session.session_id
        self.agents = [a.agent_id for a in session.agents() if a.name in AGENTS]
        self.n = 0

    def next(self) -> list[Event]:
        """The next few events (one model call, or one tool call, or one message)."""
        i = self.n
        self.n += 1
        agent = self.agents[i % len(self.agents)]
        sid = self.session_id
        call = f"bench-{i}"
        shape = i % 5
        if shape in (0, 2):
            text = f"Step {i}: reading the module and planning the change to function_{i % 97}."
            request: dict[str, Any] = {
                "messages": [
                    {"role": "system", "content": "You are a coder on a team. " * 8},
                    {"role": "user", "content": f"Continue task {i % 12}: " + "context " * 40},
                ],
                "tools": ["file_read", "file_edit", "shell"],
            }
            return [
                ModelCallStarted(
                    session_id=sid,  # type: ignore[arg-type]
                    agent_id=agent,  # type: ignore[arg-type]
                    call_id=call,  # type: ignore[arg-type]
                    iteration=i,
                    model="function:bench",
                    request=request,
                ),
                ModelCallCompleted(
                    session_id=sid,  # type: ignore[arg-type]
                    agent_id=agent,  # type: ignore[arg-type]
                    call_id=call,  # type: ignore[arg-type]
                    text=text,
                    input_tokens=900 + i % 300,
                    output_tokens=120 + i % 80,
                    cost_usd=0.0021,
                    latency_ms=850.0,
                ),
            ]
        if shape in (1, 3):
            target = f"/project/src/module_{i % 40}.py"
            return [
                ToolCallStarted(
                    session_id=sid,  # type: ignore[arg-type]
                    agent_id=agent,  # type: ignore[arg-type]
                    call_id=call,  # type: ignore[arg-type]
                    tool="file_read",
                    arguments={"path": f"src/module_{i % 40}.py"},
                    target=target,
                ),
                ToolCallCompleted(
                    session_id=sid,  # type: ignore[arg-type]
                    agent_id=agent,  # type: ignore[arg-type]
                    call_id=call,  # type: ignore[arg-type]
                    tool="file_read",
                    result="1\tdef f():\n2\t    return 1\n" * 20,
                    duration_ms=3.0,
                ),
            ]
        return [
            MessageSent(
                session_id=sid,  # type: ignore[arg-type]
                message_id=f"bench-msg-{i}",  # type: ignore[arg-type]
                msg_type="peer_message",
                tier="normal",
                content=f"Progress note {i}: module_{i % 40} is done, moving on.",
                from_agent=agent,  # type: ignore[arg-type]
                from_name="agent",
                to_agent=self.agents[(i + 1) % len(self.agents)],  # type: ignore[arg-type]
            )
        ]


async def build_session(store: str, project: Path, events: int) -> tuple[Loomkin, Session, Filler]:
    """A store at ``store`` with a live session of ``events`` events on ``project``."""
    loomkin = await Loomkin.open(store)
    session = await loomkin.open_session(
        project, model=FunctionModel(lambda _request: Reply(text="Done.")), title=f"bench {events}"
    )
    team = await session.create_team("builders", purpose="Implement the modules")
    for name in AGENTS:
        await session.spawn_agent(name, "coder", team=team)
    previous: str | None = None
    for k in range(12):
        title = f"Implement module {k}: parse, validate and store the records of part {k}"
        task = await session.create_task(
            title,
            description=f"Module {k} of the benchmark graph.",
            team=team,
            depends_on=(previous,) if previous else (),
            dep_kind="requires_output" if k % 3 == 0 else "blocks",
            milestone="interface" if k % 3 == 0 and previous else None,
            role="nobody-has-this-role",
        )
        previous = task
    await loomkin.wait_idle()
    filler = Filler(session)
    log = event_log(loomkin)
    have = len(await session.history())
    while have < events:
        batch: list[Event] = []
        while len(batch) < min(500, events - have):
            batch.extend(filler.next())
        await log.append(*batch)
        have += len(batch)
    return loomkin, session, filler


async def stream_events(filler: Filler, loomkin: Loomkin, stop: asyncio.Event, per_s: float) -> int:
    """Append the filler's events at ``per_s`` a second until ``stop``; returns how many."""
    log = event_log(loomkin)
    sent = 0
    while not stop.is_set():
        for event in filler.next():
            await log.append(event)
            sent += 1
            await asyncio.sleep(1 / per_s)
    return sent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Host:
    """The server: ``loomkin _bench-web-host`` in a child process, driven over its stdin.

    The web app and the benchmarks are sibling layers (neither imports the other), so the
    session and its server live in the CLI's hidden host command: it builds the session,
    serves it, and streams events between a ``stream`` and a ``stop`` line on its stdin.
    """

    def __init__(self, events: int, folder: Path) -> None:
        self.port = _free_port()
        command = [sys.executable, "-m", "loomkin.cli", "_bench-web-host"]
        command += ["--events", str(events), "--dir", str(folder), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.url = self._expect("URL ").split()[0]

    def _expect(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise UserError(f"the benchmark's web host ended before printing {prefix.strip()!r}")

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def streamed(self) -> int:
        self.say("stop")
        return int(self._expect("STREAMED "))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _measure(events: int, *, stream_s: float, shots: Path | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="loomkin-bench-web-") as tmp:
        host = _Host(events, Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                try:
                    result = _in_browser(browser, host, stream_s)
                    if shots is not None:
                        _screenshots(browser, host.url, shots, events)
                finally:
                    browser.close()
        finally:
            host.close()
    return {"events": events, **result}


def _in_browser(browser: Any, host: _Host, stream_s: float) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.add_init_script(_LONG_TASKS)
    ready = "() => document.body.dataset.ready === '1'"
    page.goto(host.url)
    page.wait_for_function(ready, timeout=120_000)
    reloads = []
    for _ in range(3):
        page.reload()
        page.wait_for_function(ready, timeout=120_000)
        mark = "performance.getEntriesByName('loomkin-interactive')[0].startTime"
        reloads.append(page.evaluate(mark) / 1000)
    page.wait_for_function("() => document.querySelector('#connection').dataset.state === 'live'")
    rows_loaded = page.evaluate("window.__loomkin.feed.entries.length")
    start = page.evaluate("performance.now()")
    host.say("stream")
    # The long-task window has no evaluation of the benchmark's own in it (Playwright's
    # scripts run on the page's main thread too); the click is measured after it.
    page.wait_for_timeout(stream_s * 1000)
    end = page.evaluate("performance.now()")
    click = (
        "async () => { const b = document.querySelector('#agents .card button[data-action=steer]');"
        " const t = performance.now(); b.click();"
        " await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));"
        " return performance.now() - t; }"
    )
    steer_ms = page.evaluate(click)
    page.wait_for_timeout(1000)
    streamed = host.streamed()
    page.wait_for_timeout(500)
    tasks = [d for s, d in page.evaluate("window.__longTasks") if start <= s < end]
    slow_views = page.evaluate("window.__loomkinSlow")
    frames = [f for f in page.evaluate("window.__frames") if start <= f["at"] < end]
    slowest = sorted(frames, key=lambda f: -f["ms"])[:3]
    for frame in slowest:
        frame.pop("at")
    cdp = context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    return {
        "reload_to_interactive_s": round(statistics.median(reloads), 3),
        "reloads_s": [round(r, 3) for r in reloads],
        "rows_loaded": rows_loaded,
        "streamed_events": streamed,
        "long_tasks": len(tasks),
        "p95_long_task_ms": round(_p95(tasks), 1),
        "max_long_task_ms": round(max(tasks, default=0.0), 1),
        "steer_click_ms": round(steer_ms, 1),
        "slow_views": slow_views,
        "slowest_frames": slowest,
        "dom_nodes": page_nodes(metrics),
        "js_heap_mb": round(metrics.get("JSHeapUsedSize", 0.0) / 2**20, 2),
    }


def page_nodes(metrics: dict[str, float]) -> int:
    """DOM nodes of the page (Chromium's ``Nodes`` metric)."""
    return int(metrics.get("Nodes", 0))


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _screenshots(browser: Any, url: str, folder: Path, events: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        for width, height in ((1500, 1000), (390, 844)):
            context = browser.new_context(
                viewport={"width": width, "height": height}, color_scheme=scheme
            )
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=120_000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(folder / f"web-{events}-{width}-{scheme}.png"))
            context.close()


def run_web(
    sizes: list[int], *, stream_s: float = 10.0, shots: Path | None = None
) -> dict[str, Any]:
    """Measure the web app at each size; returns the figures by size and the goals' checks."""
    if not CHROMIUM.exists():
        raise UserError(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if any(n < 100 for n in sizes):
        raise UserError(f"--events must be at least 100, got {min(sizes)}")
    results = [_measure(n, stream_s=stream_s, shots=shots) for n in sorted(set(sizes))]
    small, large = results[0], results[-1]
    return {
        "sizes": results,
        "heap_ratio": round(large["js_heap_mb"] / small["js_heap_mb"], 2)
        if small["js_heap_mb"]
        else None,
        "reload_ratio": round(
            large["reload_to_interactive_s"] / max(small["reload_to_interactive_s"], 1e-3), 2
        ),
        "goals": {
            "reload_to_interactive_s<=1": large["reload_to_interactive_s"] <= 1.0,
            "p95_long_task_ms<=50": all(r["p95_long_task_ms"] <= 50 for r in results),
            "dom_nodes<=5000": all(r["dom_nodes"] <= 5000 for r in results),
        },
    }


def web_table(report: dict[str, Any]) -> str:
    """The report as a small text table."""
    keys = (
        "reload_to_interactive_s",
        "p95_long_task_ms",
        "max_long_task_ms",
        "long_tasks",
        "steer_click_ms",
        "dom_nodes",
        "js_heap_mb",
        "rows_loaded",
    )
    sizes = report["sizes"]
    lines = [f"{'events':<26}" + "".join(f"{r['events']:>12,}" for r in sizes)]
    lines += [f"{key:<26}" + "".join(f"{r[key]:>12}" for r in sizes) for key in keys]
    lines.append(f"heap ratio (largest/smallest): {report['heap_ratio']}")
    lines.append(f"goals: {report['goals']}")
    return "\n".join(lines)
