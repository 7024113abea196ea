"""The web app in a real headless Chromium against ``loomkin serve --demo`` (a subprocess).

The page loads, agent cards appear, permission prompts are answered in the page, an agent is
paused (its card shows it), steered (the guidance shows in its next model request in the
feed), resumed, inspected, and the run completes. A screenshot goes to ``artifacts/``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
STEER = "Keep the change minimal and mention the shout flag in the docstring"
URL = re.compile(r"http://127\.0\.0\.1:\d+/\S*")


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``loomkin serve --demo`` on a free loopback port; yields the page's URL (with its token)."""
    _need_chromium()
    command = [
        sys.executable,
        *("-m", "loomkin.cli", "serve", "--demo", "--pace", "0.3", "--no-auto-approve"),
        *("--port", "0", "--project", str(tmp_path / "demo")),
    ]
    env = {k: v for k, v in os.environ.items() if k != "LOOMKIN_TOKEN"} | {"COLUMNS": "400"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if URL.search(line):
                found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not found.wait(60):
            pytest.fail("loomkin serve printed no URL:\n" + "".join(lines))
        match = next(m for line in lines if (m := URL.search(line)))
        yield match.group(0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        reader.join(5)
        proc.stdout.close()


@pytest.fixture
def page(server: str) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            tab = context.new_page()
            tab.set_default_timeout(30_000)
            tab.goto(server)
            yield tab
        finally:
            browser.close()


def test_demo_in_the_browser(page: Page) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    cards = page.locator("#agents .card")
    expect(page.locator('#agents .card[data-agent="concierge"]')).to_be_visible()
    expect(page.locator("#chat li.user")).to_contain_text("greet")
    # The printed URL carried the token; the page kept it and took it out of the address,
    # and a reload still works (the token is in the tab's sessionStorage).
    assert "token=" not in page.url
    page.reload()
    expect(page.locator('#agents .card[data-agent="concierge"]')).to_be_visible()

    # alice asks to edit a file: pause her while she waits (queued), then allow the edit.
    alice = page.locator('#agents .card[data-agent="alice"]')
    expect(alice).to_have_attribute("data-status", "waiting_permission")
    prompt = page.locator(".prompt").filter(has_text="alice").first
    expect(prompt.locator(".tool")).not_to_be_empty()
    expect(prompt.locator(".target")).to_contain_text(str(Path("greetings")))
    alice.get_by_role("button", name="Pause", exact=True).click()
    expect(alice.locator(".badge", has_text="pause queued")).to_be_visible()
    prompt.get_by_role("button", name="Allow once", exact=True).click()
    expect(alice).to_have_attribute("data-status", "paused")
    expect(alice.locator(".status")).to_have_text("paused")
    page.screenshot(path=str(ARTIFACTS / "web-demo.png"), full_page=True)

    # Steer her while paused, then resume; the guidance lands in her next model request.
    alice.get_by_role("button", name="Steer", exact=True).click()
    alice.get_by_role("textbox").fill(STEER)
    alice.get_by_role("button", name="Send guidance").click()
    expect(page.locator("#feed li[data-kind=control_requested]").first).to_contain_text(STEER)
    resumed_after = int(page.locator("#feed li").first.get_attribute("data-position") or "0")
    alice.get_by_role("button", name="Resume", exact=True).click()
    expect(alice).not_to_have_attribute("data-status", "paused")

    page.locator("#filter-agent").select_option(alice.get_attribute("data-agent-id"))
    page.locator("#filter-type").select_option("model_call")
    page.wait_for_function(
        "(after) => { const r = document.querySelector('#feed li[data-kind=model_call_started]');"
        " return r && Number(r.dataset.position) > after; }",
        arg=resumed_after,
    )
    # The row found, by position: alice's next calls may add newer rows above it meanwhile.
    first = page.locator("#feed li[data-kind=model_call_started]").first
    position = first.get_attribute("data-position")
    newest = page.locator(f"#feed li[data-kind=model_call_started][data-position='{position}']")
    newest.click()  # the row's details open in a dialog (the feed's rows are one line each)
    expect(page.locator("#row-body")).to_contain_text(f"[User guidance]: {STEER}")
    page.locator("#row-dialog").get_by_role("button", name="Close").click()
    page.locator("#filter-agent").select_option("")
    page.locator("#filter-type").select_option("")

    # Inspect shows the snapshot.
    alice.get_by_role("button", name="Inspect", exact=True).click()
    expect(page.locator("#inspect-body")).to_contain_text('"name": "alice"')
    page.locator("#inspect-dialog").get_by_role("button", name="Close").click()

    _run_to_completion(page)
    expect(page.locator("#run-status")).to_have_attribute("data-state", "idle")
    expect(page.locator("#task-graph g.task-node").first).to_be_visible()
    assert cards.count() >= 4
    page.screenshot(path=str(ARTIFACTS / "web-demo-done.png"), full_page=True)


def _run_to_completion(page: Page) -> None:
    """Allow every remaining prompt until every task is completed and nobody works."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    done = (
        "() => { const tasks = [...document.querySelectorAll('#task-graph g.task-node')];"
        " return tasks.length > 0 && tasks.every(t => t.dataset.status === 'completed')"
        " && document.querySelector('#run-status').dataset.state === 'idle'; }"
    )
    either = f"() => !!document.querySelector('.prompt') || ({done})()"
    for _ in range(90):
        page.wait_for_function(either, timeout=60_000)
        if page.evaluate(done):
            return
        request_id = page.evaluate("() => document.querySelector('.prompt')?.dataset.requestId")
        if request_id is None:
            continue  # answered meanwhile
        prompt = page.locator(f'.prompt[data-request-id="{request_id}"]')
        try:
            prompt.get_by_role("button", name="Allow always", exact=True).click(timeout=10_000)
        except PlaywrightTimeout:
            # An earlier "allow always" covered this prompt too: the server resolved it and
            # the page took it away before the click. Anything else is a failure.
            if prompt.count() == 0:
                continue
            raise
        expect(prompt).to_have_count(0)
    pytest.fail("the demo did not complete")
