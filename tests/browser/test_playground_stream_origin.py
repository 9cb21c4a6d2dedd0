"""The playground as it runs in AWS: the page on one origin (API Gateway's domain), its turns
streamed live from another (the conversations function URL, which streams where API Gateway
buffers), allowed by CORS and by the page's Content-Security-Policy. Here the two origins are
http://127.0.0.1:P and http://localhost:P of one `make serve`, which answers CORS as the function
URL does (CORS_ALLOW_ORIGINS)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from local.launcher import Server, free_port
from tests.browser.harness import BROWSER_KEY, Served, open_playground
from tests.browser.test_playground_browser import code_message, send, wait_for_turn


@pytest.fixture(scope="module")
def two_origins() -> Iterator[tuple[Served, str]]:
    port = free_port()
    page_origin, stream_origin = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    data_dir = tempfile.mkdtemp(prefix="agents-browser-stream-")
    env = {"SANDBOX_WORKERS": "1", "SANDBOX_TIMEOUT_S": "20", "DATA_DIR": data_dir, "AUTH_MODE": "keys",
           "API_KEYS": BROWSER_KEY, "PLAYGROUND_STREAM_URL": stream_origin + "/", "CORS_ALLOW_ORIGINS": page_origin}
    try:
        server = Server(env, log_path="/tmp/agents-api-browser-stream.log", port=port)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield Served(page_origin, BROWSER_KEY), stream_origin
    server.stop(timeout_s=15)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_turns_stream_live_from_the_other_origin_and_everything_else_stays_on_the_pages(
        browser: Any, two_origins: tuple[Served, str]) -> None:
    served, stream_origin = two_origins
    context, page, console = open_playground(browser, served)
    try:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
        send(page, code_message("print('live from elsewhere', flush=True)", "import time\ntime.sleep(1.5)"))
        # The first block's output is on the page while the second still runs: read as it arrives.
        page.wait_for_function("""() => {
            const transcript = document.getElementById('transcript');
            const output = transcript.querySelector('.entry-tool pre.output');
            return transcript.dataset.state === 'streaming' && output
                && output.textContent.includes('live from elsewhere');
        }""", timeout=20_000)
        wait_for_turn(page)
        turns = [r for r in requests if r.startswith("POST ") and "/v1/conversations" in r]
        assert turns and all(r.startswith(f"POST {stream_origin}/v1/conversations") for r in turns), requests
        others = [r for r in requests if r not in turns]
        assert others and all(r.split(" ", 1)[1].startswith(served.url) for r in others), requests
        problems = [line for line in console if line.startswith(("pageerror", "error"))]
        assert not problems, problems  # no CSP or CORS refusal on the way
    finally:
        context.close()
