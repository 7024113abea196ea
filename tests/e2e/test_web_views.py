"""The web app's views in a real headless Chromium against ``loomkin serve --demo``.

What a user relies on when the page stays open all day: the tab's title counts what waits
on them; prompts are docked above the panels, show a diff and say what "Allow always"
covers, and answer to o / a / d; the task graph shows whole titles and milestones and opens
a task's detail; the timeline, spend and run summary fill in; start/finish pairs are one
row and the feed can be searched; the page fits 390 px without sideways scrolling; a
stopped server disables the controls, a restarted one makes the tab say it is stale and
offer the current session, and the switcher opens a past session read-only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import Server, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
BADGE = re.compile(r"^\(\d+\) Loomkin$")


def _demo(serve: list[Server], tmp_path: Path, *, port: int | None = None) -> Server:
    server = Server(
        *("--demo", "--pace", "0.2", "--no-auto-approve", "--project", str(tmp_path / "demo")),
        port=port or free_port(),
    )
    serve.append(server)
    server.start()
    return server


def _open(browser: Browser, url: str, width: int = 1400, scheme: str = "light") -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return page


def test_prompts_badge_shortcuts_graph_timeline_and_feed(
    serve: list[Server], browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = _open(browser, _demo(serve, tmp_path).url)
    # The title counts the prompts waiting, which are docked above the panels.
    expect(page).to_have_title(BADGE)
    prompts = page.locator("#prompt-list .prompt")
    expect(prompts.first).to_be_visible()
    # Measured in the page once the layout settles (more prompts can still be arriving):
    # the dock's bottom edge must end above the panels, never over them.
    page.wait_for_function(
        """() => {
            const dock = document.querySelector("#prompts").getBoundingClientRect();
            const panels = document.querySelector("#workspace").getBoundingClientRect();
            return dock.height > 0 && dock.bottom <= panels.top + 1;
        }"""
    )

    # An edit's prompt shows the change as a diff and says what "always" covers.
    edit = prompts.filter(has_text="file_edit").first
    expect(edit.locator("pre.diff .dd").first).to_be_visible()
    expect(edit.locator("pre.diff .da").first).to_be_visible()
    expect(edit.locator(".always")).to_contain_text("only (this one file)")
    expect(edit.locator(".always")).to_contain_text("greetings/core.py")

    # A cancel says what it did: tess (the tester) waits for work, so nothing.
    tess = page.locator('#agents .card[data-agent="tess"]')
    expect(tess).to_have_attribute("data-status", "idle")
    tess.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#toast")).to_contain_text("cancel tess")
    expect(page.locator("#toast")).not_to_contain_text("asked")

    # o answers the first prompt (allow once); then `a` (allow always) until the run is done.
    first = prompts.first.get_attribute("data-request-id")
    page.locator("body").press("o")
    expect(page.locator(f'.prompt[data-request-id="{first}"]')).to_have_count(0)

    # A steer draft survives the events that arrive meanwhile, focused or not.
    alice = page.locator('#agents .card[data-agent="alice"]')
    alice.get_by_role("button", name="Steer", exact=True).click()
    alice.get_by_role("textbox").fill("half-written guidance")
    page.locator("#feed-search").click()  # focus elsewhere: the card may be rebuilt now
    before = page.evaluate("window.__loomkin.state.last")
    page.wait_for_function(f"() => window.__loomkin.state.last > {before}")
    page.wait_for_timeout(1500)  # a refresh of the view (at most one a second)
    expect(alice.get_by_role("textbox")).to_have_value("half-written guidance")
    page.locator("body").click(position={"x": 2, "y": 2})  # the keys work again
    done = (
        "() => { const t = [...document.querySelectorAll('#task-graph g.task-node')];"
        " return t.length > 0 && t.every(n => n.dataset.status === 'completed')"
        " && document.querySelector('#run-status').dataset.state === 'idle'; }"
    )
    first_prompt = "() => document.querySelector('#prompt-list .prompt')?.dataset.requestId"
    for _ in range(90):
        page.wait_for_function(f"() => !!({first_prompt})() || ({done})()", timeout=60_000)
        if page.evaluate(done):
            break
        request_id = page.evaluate(first_prompt)
        if request_id is None:
            continue  # answered meanwhile (an "always" covered it)
        page.locator("body").press("a")
        expect(page.locator(f'.prompt[data-request-id="{request_id}"]')).to_have_count(0)
    else:
        pytest.fail("the demo did not complete")
    expect(page).to_have_title("Loomkin")

    # Whole titles, milestones drawn, and a task's detail on click.
    nodes = page.locator("#task-graph g.task-node")
    for i in range(nodes.count()):
        node = nodes.nth(i)
        shown = " ".join(node.locator("text.title").all_text_contents())
        assert shown == node.get_attribute("data-task")
    milestones = page.locator("#task-graph .milestone, #task-graph .edge-milestone")
    expect(milestones.first).to_be_visible()
    nodes.first.click()
    body = page.locator("#task-body")
    expect(page.locator("#task-dialog")).to_be_visible()
    expect(body).to_contain_text("Status history")
    expect(body.locator(".history li").first).to_be_visible()
    expect(body.locator(".task-status")).to_have_text("completed")
    page.locator("#task-dialog").get_by_role("button", name="Close").click()

    # The team tree lists the agents; the timeline, spend and run summary fill in.
    expect(page.locator('#team-tree .member[data-agent="alice"]')).to_be_visible()
    page.locator("#insight").scroll_into_view_if_needed()
    page.wait_for_function("() => Number(document.querySelector('#timeline').dataset.spans) > 0")
    page.wait_for_function("() => Number(document.querySelector('#spend').dataset.points) > 0")
    files = page.locator("#summary .files li")
    expect(files.first).to_be_visible()
    files.first.locator("summary").click()
    expect(files.first.locator("pre.diff")).to_be_visible()

    # A call's start and end are one row; the search keeps only matching rows.
    pair = page.locator('#feed li[data-kinds="tool_call_started tool_call_completed"]')
    expect(pair.first).to_be_visible()
    page.locator("#feed-search").fill("farewell")
    page.wait_for_function(
        "() => { const r = [...document.querySelectorAll('#feed li')];"
        " return r.length > 0 && r.every(li => li.textContent.toLowerCase().includes('farewell')"
        " || li.title.toLowerCase().includes('farewell')); }"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-views.png"), full_page=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_390_px_screen_never_scrolls_sideways(
    serve: list[Server], browser: Browser, tmp_path: Path, scheme: str
) -> None:
    from playwright.sync_api import expect

    page = _open(browser, _demo(serve, tmp_path).url, width=390, scheme=scheme)
    expect(page.locator("#prompt-list .prompt").first).to_be_visible()
    expect(page.locator("#agents .card").first).to_be_visible()
    page.wait_for_timeout(500)  # let a frame or two of rows render
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px"
    for box in (b for p in page.locator(".prompt").all() if (b := p.bounding_box())):
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
    expect(page.locator(".prompt button", has_text="Allow once").first).to_be_in_viewport()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-390-{scheme}.png"), full_page=True)


def test_server_down_restart_stale_tab_switcher_and_read_only(
    serve: list[Server], browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    port = free_port()
    server = _demo(serve, tmp_path, port=port)
    page = _open(browser, server.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#prompt-list .prompt").first).to_be_visible()
    first_session = page.evaluate("window.__loomkin.state.sessionId")

    # A click whose request cannot reach the server says so.
    page.route("**/agents/**/pause", lambda route: route.abort())
    page.locator("#agents .card").first.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#toast")).to_contain_text("unreachable")
    page.unroute("**/agents/**/pause")

    # The server stops: a banner, the dot, and every control disabled.
    server.stop()
    expect(page.locator("#banners")).to_contain_text("cannot be reached")
    expect(page.locator("#connection")).to_have_attribute("data-state", "down")
    expect(page.locator('#agents button[data-action="pause"]').first).to_be_disabled()
    expect(page.locator(".prompt button", has_text="Allow once").first).to_be_disabled()
    expect(page.locator("#chat-input")).to_be_disabled()

    # It comes back as a new process with a new session: the tab says it is stale.
    server.start()
    banner = page.locator('#banners [data-key="conn"]')
    expect(banner).to_contain_text("restarted", timeout=40_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "stale")
    expect(page).to_have_title("(stale) Loomkin")
    expect(page.locator('#agents button[data-action="pause"]').first).to_be_disabled()
    banner.get_by_role("button", name="Open the current session").click()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__loomkin.state.sessionId") != first_session

    # The switcher lists both; the first opens read-only, as its log left it.
    switch = page.locator("#session-switch")
    expect(switch.locator("option")).to_have_count(2)
    switch.select_option(first_session)
    expect(page.locator('#banners [data-key="readonly"]')).to_contain_text("not running")
    expect(page.locator("#run-status")).to_contain_text("read-only")
    expect(page.locator("#agents .card").first).to_be_visible()
    expect(page.locator('#agents button[data-action="pause"]').first).to_be_disabled()
    expect(page.locator("#feed li").first).to_be_visible()
    expect(page.locator("#prompt-list .prompt")).to_have_count(0)
