"""What the browser tests share: the server under test and a fresh page on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

BROWSER_KEY = "browser-test-key"
# Most browser tests run against the server that wants a key, as in AWS; those about the key field
# itself run in both modes (the ``served`` fixture's params).
KEYS_MODE_ONLY = pytest.mark.parametrize("served", ["keys"], indirect=True)


@dataclass(frozen=True)
class Served:
    url: str
    key: str | None  # what the user types into the page; None where the server takes any token

    @property
    def api_key(self) -> str:
        """The key the page's requests carry (the page's own fixed token in open mode)."""
        return self.key or "playground"


def open_playground(browser: Any, served: Served, key: str | None = None) -> tuple[Any, Any, list[str]]:
    """A fresh context (empty sessionStorage) on the page, ready, with ``key`` (or the server's) typed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.goto(served.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    typed = key if key is not None else served.key
    if typed is not None:
        field = page.get_by_label("API key")
        field.fill(typed)
        field.press("Tab")  # the change event: the page stores the key and loads the lists
    return context, page, console


def agent_with_two_versions(page: Any, name: str) -> None:
    """On the Agents tab: a new agent ``name``, saved a second time (versions 0 and 1, 1 active)."""
    page.get_by_role("tab", name="Agents").click()
    page.get_by_role("button", name="New agent").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create agent").click()
    page.get_by_label("Instructions").fill("a second version")
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_role("button", name="Make version 0 active").wait_for()
