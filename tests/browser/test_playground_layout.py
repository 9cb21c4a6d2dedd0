"""The playground at every width people use, with a keyboard, and to axe-core (Deque's engine,
pinned by the Makefile): no horizontal scroll and Send in view from 360 to 2560 px, the message
box reached at once, no serious or critical violation in either colour scheme. Dark-mode
screenshots are kept in tests/browser/artifacts/ for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.harness import agent_with_two_versions
from tests.browser.test_playground_browser import code_message, send, wait_for_turn

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(os.environ.get("AXE_JS", next(iter(sorted((ROOT / ".venv").glob("axe-*/node_modules/axe-core/axe.min.js"))),
                                              ROOT / ".venv/axe-missing.js")))
WIDTHS = (360, 390, 820, 1280, 2560)
# A user's message with a long line of code, and output with one: what overflowed at 390 px.
LONG = "values = [" + ", ".join(str(n * 1_000_003) for n in range(40)) + "]"


@pytest.fixture
def page(quick_page: Any) -> Any:
    return quick_page


def _conversation_with_everything(page: Any) -> None:
    """A turn whose cells show what the page can show: code, output, an error, a table, a plot."""
    send(page, code_message(f"{LONG}\nprint(values)", "1 / 0",
                            "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3.5, 4.25]})",
                            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])"))
    wait_for_turn(page)
    expect(page.locator(".entry-tool")).to_have_count(4)


def test_the_chat_fits_every_width_and_send_stays_in_view(page: Any) -> None:
    _conversation_with_everything(page)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 844 if width < 800 else 900})
        scroll, view = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= view, f"{scroll} px of page in a {view} px window"
        for name in ("Send", "New conversation"):
            button = page.get_by_role("button", name=name)
            button.scroll_into_view_if_needed()
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, name, box)
        box = page.get_by_label("Message").bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, (width, "Message", box)


def test_the_keyboard_starts_in_the_message_box_and_the_skip_link_leads_there(page: Any) -> None:
    expect(page.get_by_label("Message")).to_be_focused()  # no key to type in open mode: straight to it
    page.get_by_role("tab", name="Chat").focus()
    page.keyboard.press("Shift+Tab")  # the first stop of the page, before its header
    skip = page.get_by_role("link", name="Skip to the message box")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Message")).to_be_focused()
    # The transcript is no live region: the status line says what changed, once.
    assert page.locator("#transcript").get_attribute("aria-live") is None
    expect(page.get_by_role("status")).to_have_count(1)


def _axe(page: Any) -> list[dict[str, Any]]:
    if not AXE.is_file():
        pytest.fail(f"axe-core is not installed at {AXE}: run `make test` (it installs it with npm)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;true")  # through the DevTools protocol: the page's CSP allows no injected script
    result = page.evaluate("""async () => {
        const found = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',
            'wcag21aa', 'best-practice'] } });
        return found.violations.map((v) => ({ id: v.id, impact: v.impact,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ': ' + n.failureSummary) }));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_axe_finds_no_serious_or_critical_violation_on_any_view_light_or_dark(page: Any) -> None:
    _conversation_with_everything(page)
    agent_with_two_versions(page, "axe")
    page.get_by_role("tab", name="Batches").click()
    page.get_by_label("Requests (JSONL").fill('{"custom_id": "a", "body": {"inputs": "hi"}}')
    page.get_by_role("button", name="Start batch").click()
    expect(page.locator("#batch-list li.job").first).to_have_attribute("data-status", "SUCCESS", timeout=60_000)
    problems = {}
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for tab in ("Chat", "Agents", "Batches"):
            page.get_by_role("tab", name=tab).click()
            problems[f"{tab} ({scheme})"] = _axe(page)
            if scheme == "dark":  # kept for a person to look at
                page.screenshot(path=str(ARTIFACTS / f"dark-{tab.lower()}.png"), full_page=True)
    assert not any(problems.values()), problems
