"""The playground in a real browser: what a user does, and what they must see."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.harness import KEYS_MODE_ONLY, Served, open_playground

FENCE = "```"


def code_message(*blocks: str, text: str = "") -> str:
    """A message the offline model understands: it runs each ```python block, in order, then answers."""
    return text + "".join(f"\n{FENCE}python\n{block}\n{FENCE}\n" for block in blocks)


def turns_done(page: Any) -> int:
    return int(page.locator("#transcript").get_attribute("data-turns") or 0)


def send(page: Any, message: str) -> None:
    page.get_by_label("Message").fill(message)
    page.evaluate("() => { document.querySelector('#transcript').dataset.sent = "
                  "document.querySelector('#transcript').dataset.turns || '0'; }")
    page.get_by_role("button", name="Send").click()


def wait_for_turn(page: Any) -> None:
    """Until the turn just sent has streamed to its end (the page counts finished turns: the
    "Done" of the turn before would otherwise pass for this one's) and the page is idle."""
    sent = int(page.locator("#transcript").get_attribute("data-sent") or 0)
    # A turn runs for seconds, more on a loaded machine: expect's 5 s default is not its bound.
    expect(page.locator("#transcript")).to_have_attribute("data-turns", re.compile(rf"^(?!{sent}$)\d+$"),
                                                          timeout=60_000)
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Done"))
    expect(page.locator("#transcript")).to_have_attribute("data-state", "idle")


def conversation_id(page: Any) -> str:
    found = page.locator("#conversation-title").get_attribute("data-conversation-id") or ""
    assert re.fullmatch(r"conv_[0-9a-f]+", found), found
    return found


def api_get(page: Any, served: Served, path: str) -> Any:
    response = page.request.get(served.url + path, headers={"Authorization": f"Bearer {served.api_key}"})
    assert response.ok, (path, response.status, response.text())
    return response.json()


@KEYS_MODE_ONLY
def test_printed_output_and_a_loaded_plot_appear_while_the_turn_streams(page: Any) -> None:
    plot = "import matplotlib.pyplot as plt\nprint('hello from the sandbox')\nplt.plot([1, 3, 2])"
    send(page, code_message(plot, "import time\ntime.sleep(1.5)", text="Plot a line"))
    # The first block's output and its plot, really decoded (naturalWidth > 0), while the second
    # block still runs: the page renders the stream as it arrives, not the stored result afterwards.
    page.wait_for_function("""() => {
        const transcript = document.getElementById('transcript');
        const img = transcript.querySelector('img.plot');
        const output = transcript.querySelector('.entry-tool pre.output');
        return transcript.dataset.state === 'streaming' && img && img.complete && img.naturalWidth > 0
            && output && output.textContent.includes('hello from the sandbox');
    }""", timeout=20_000)
    wait_for_turn(page)
    executions = page.locator(".entry-tool")
    expect(executions).to_have_count(2)
    expect(executions.first.locator("pre.code .tok-keyword").first).to_have_text("import")  # highlighted
    expect(page.locator(".entry-assistant")).to_contain_text("I ran 2 code block(s)")
    assert page.locator("img.plot").evaluate("img => img.naturalWidth") > 0  # still shown once stored


@KEYS_MODE_ONLY
def test_an_attached_csv_is_summed_by_pandas(page: Any) -> None:
    page.locator("#attach").set_input_files(files=[{"name": "sales.csv", "mimeType": "text/csv",
                                                    "buffer": b"region,amount\nnorth,10\nsouth,32\n"}])
    expect(page.get_by_role("list", name="Attached files")).to_contain_text("sales.csv")
    page.get_by_label("Message").fill(code_message("import pandas as pd\nprint(pd.read_csv('sales.csv').amount.sum())"))
    page.get_by_label("Message").press("Control+Enter")  # sends, as the Send button does
    wait_for_turn(page)
    expect(page.locator(".entry-tool pre.output")).to_have_text("42")
    expect(page.locator(".entry-user").last).to_contain_text("sales.csv")


@KEYS_MODE_ONLY
def test_restart_from_an_entry_starts_a_new_conversation_with_the_history_up_to_it(page: Any, served: Served) -> None:
    send(page, code_message("x = 1\nprint('first turn')"))
    wait_for_turn(page)
    send(page, code_message("x = 2\nprint('second turn')"))
    wait_for_turn(page)
    original = conversation_id(page)
    page.locator(".entry-tool").first.get_by_role("button", name="Restart from here").click()
    expect(page.locator("#restart-banner")).to_be_visible()
    send(page, code_message("print('restarted with x =', x)"))
    wait_for_turn(page)
    restarted = conversation_id(page)
    assert restarted != original
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text("first turn")
    expect(transcript).not_to_contain_text("second turn")
    expect(page.locator(".entry-tool pre.output").last).to_have_text("restarted with x = 1")  # the state as it was
    history = api_get(page, served, f"/v1/conversations/{restarted}/history")["entries"]
    assert [e["type"] for e in history] == ["message.input", "tool.execution", "message.input", "tool.execution",
                                            "message.output"]
    expect(page.locator("#conversation-list li")).to_have_count(len(api_get(page, served, "/v1/conversations")))


@KEYS_MODE_ONLY
def test_an_agent_is_created_versioned_and_used(page: Any, served: Served) -> None:
    page.get_by_role("tab", name="Agents").click()
    page.get_by_role("button", name="New agent").click()
    page.get_by_label("Name").fill("browser analyst")
    page.get_by_label("Instructions").fill("Compute with code.")
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("alert")).to_contain_text("Saved agent browser analyst, version 0")
    page.get_by_label("Instructions").fill("Compute with code, briefly.")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_role("alert")).to_contain_text("version 1")
    page.get_by_role("button", name="Make version 0 active").click()
    expect(page.locator("#version-list")).to_contain_text("Version 0")
    expect(page.locator("#agent-form-title")).to_contain_text("version 0")
    expect(page.get_by_label("Instructions")).to_have_value("Compute with code.")

    page.get_by_role("button", name="Chat with this agent").click()
    expect(page.get_by_role("tab", name="Chat")).to_have_attribute("aria-selected", "true")
    agent_id = page.locator("#agent-select").input_value()
    assert agent_id.startswith("ag_")
    send(page, code_message("print(6 * 7)"))
    wait_for_turn(page)
    expect(page.locator(".entry-tool pre.output")).to_have_text("42")
    stored = api_get(page, served, f"/v1/conversations/{conversation_id(page)}")
    assert stored["agent_id"] == agent_id and stored.get("agent_version") in (0, None)
    agent = api_get(page, served, f"/v1/agents/{agent_id}")
    assert agent["version"] == 0 and agent["completion_args"]["temperature"] == 0.3


@KEYS_MODE_ONLY
def test_a_batch_progress_bar_reaches_its_total_and_the_output_downloads(page: Any) -> None:
    page.get_by_role("tab", name="Batches").click()
    lines = [json.dumps({"custom_id": f"q{n}", "body": {"inputs": code_message(f"print({n} * 10)")}}) for n in range(3)]
    page.get_by_label("Requests (JSONL").fill("\n".join(lines))
    page.get_by_role("button", name="Start batch").click()
    expect(page.get_by_role("alert")).to_contain_text("3 requests")
    job = page.locator("#batch-list li.job").first
    bar = job.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuemax", "3")
    expect(bar).to_have_attribute("aria-valuenow", "3", timeout=60_000)
    expect(job).to_have_attribute("data-status", "SUCCESS")
    expect(job).to_contain_text("Finished")
    expect(job).to_contain_text("3 of 3 succeeded")
    with page.expect_download() as download:
        job.get_by_role("button", name="Download output").click()
    results = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert sorted(r["custom_id"] for r in results) == ["q0", "q1", "q2"]
    assert all(r["response"]["status_code"] == 200 for r in results)


HOSTILE = ("<img src=x onerror=\"window.__pwned = 'img'\">",
           "<script>window.__pwned = 'script'</script>",
           "[click me](javascript:window.__pwned='link')")


@KEYS_MODE_ONLY
def test_hostile_code_output_shows_as_text_and_runs_nothing(page: Any) -> None:
    # The fence in the output closes the answer's code block, so the tags reach the Markdown renderer too.
    lines = [*HOSTILE, "**bold** and `code`"]
    send(page, code_message("print(chr(96) * 3)\n" + "\n".join(f"print({line!r})" for line in lines)))
    wait_for_turn(page)
    output = page.locator(".entry-tool pre.output")
    for text in HOSTILE:
        expect(output).to_contain_text(text)
    answer = page.locator(".entry-assistant")
    expect(answer).to_contain_text(HOSTILE[0])
    expect(answer).to_contain_text(HOSTILE[1])
    expect(answer.locator("strong")).to_have_text("bold")  # Markdown still works around them
    transcript = page.locator("#transcript")
    expect(transcript.locator("img:not(.plot)")).to_have_count(0)
    expect(transcript.locator("script")).to_have_count(0)
    expect(transcript.locator("a")).to_have_count(0)  # no javascript: link either
    assert page.evaluate("() => window.__pwned") is None


def test_the_key_field_is_asked_for_only_where_keys_are_required(page: Any, served: Served) -> None:
    if served.key:
        expect(page.get_by_label("API key")).to_be_visible()
    else:
        expect(page.locator("#key-box")).to_be_hidden()
    # The page's requests carry the key in a header, never in a URL or a cookie.
    with page.expect_request(lambda r: "/v1/conversations" in r.url) as sent:
        page.get_by_role("button", name="New conversation").click()
        send(page, "hello")
    request = sent.value
    assert request.headers["authorization"] == f"Bearer {served.api_key}"
    assert served.api_key not in request.url and not page.context.cookies()
    wait_for_turn(page)
    expect(page.locator(".entry-assistant")).to_contain_text("no model provider is configured")


def test_a_wrong_key_is_refused_with_a_clear_message(browser: Any, served: Served) -> None:
    if served.key is None:
        pytest.skip("the server takes any key: there is no wrong one (the test above checks the field is hidden)")
    context, page, _ = open_playground(browser, served, key="not-the-key")
    try:
        expect(page.get_by_role("alert")).to_contain_text("The API key was refused (HTTP 401)")
        send(page, "hello")
        expect(page.get_by_role("alert")).to_contain_text("Check the API key field")
        expect(page.locator(".entry")).to_have_count(0)
        expect(page.get_by_label("Message")).to_have_value("hello")  # given back, to send again with the right key
    finally:
        context.close()
