"""A real headless Chromium (Debian's, driven by Playwright) against a real `make serve`.

One server per auth mode for the whole session (the same tests run with AUTH_MODE=auto, where
the page hides the key field, and with AUTH_MODE=keys and a key typed into the page), one browser,
a fresh browser context per test. A failing test leaves a screenshot and the page's console in
tests/browser/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.launcher import Server
from tests.browser.harness import BROWSER_KEY, Served, open_playground

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")  # never Playwright's download: no internet here
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session", params=["open", "keys"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    mode = request.param
    data_dir = tempfile.mkdtemp(prefix=f"agents-browser-{mode}-")
    env = {"SANDBOX_WORKERS": "2", "SANDBOX_TIMEOUT_S": "20", "DATA_DIR": data_dir}
    env.update({"AUTH_MODE": "keys", "API_KEYS": BROWSER_KEY} if mode == "keys" else {"AUTH_MODE": "auto", "API_KEYS": ""})
    try:
        server = Server(env, log_path=f"/tmp/agents-api-browser-{mode}.log")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield Served(server.url, BROWSER_KEY if mode == "keys" else None)
    server.stop(timeout_s=15)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make system-deps` (installs Debian's chromium) or set CHROMIUM_PATH")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)  # the page fixture reads it to keep artefacts
    return report


def _page_of(browser: Any, served: Served, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page on ``served``; a failed test leaves its screenshot and console as artefacts."""
    context, page, console = open_playground(browser, served)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console) + "\n")
    context.close()
    # Script errors and CSP refusals land in the console: the page must cause none.
    problems = [line for line in console if line.startswith(("pageerror", "error"))
                and "401" not in line]  # a refused key is logged by the browser as a failed request
    assert not problems, problems


@pytest.fixture
def page(browser: Any, served: Served, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _page_of(browser, served, request)


# A server of their own with short limits, in open mode, for the tests of states and layout
# (tests/browser/test_playground_states.py, test_playground_layout.py): a cell stops after 3 s.
LIMIT_S = 3


@pytest.fixture(scope="session")
def quick() -> Iterator[Served]:
    data_dir = tempfile.mkdtemp(prefix="agents-browser-states-")
    server = Server({"SANDBOX_WORKERS": "2", "SANDBOX_TIMEOUT_S": str(LIMIT_S), "DATA_DIR": data_dir,
                     "AUTH_MODE": "auto", "API_KEYS": ""}, log_path="/tmp/agents-api-browser-states.log")
    yield Served(server.url, None)
    server.stop(timeout_s=15)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def quick_page(browser: Any, quick: Served, request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _page_of(browser, quick, request)
