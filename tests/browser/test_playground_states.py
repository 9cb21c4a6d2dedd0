"""What the playground tells a person, in the cases where the old labels said the opposite of what
happened: each state in its failure case, Stop, titles, attaching by drag-and-drop, tables, copy.

On a `make serve` of their own with short limits (a cell stops after 3 s), in open mode."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.harness import Served, agent_with_two_versions
from tests.browser.test_playground_browser import api_get, code_message, conversation_id, send, wait_for_turn


@pytest.fixture
def page(quick_page: Any) -> Any:
    """Here, a page on the server with short limits (conftest.quick)."""
    return quick_page


def test_a_cell_stopped_at_its_time_limit_says_so_and_so_does_the_turn(page: Any) -> None:
    send(page, code_message("print('started')\nwhile True:\n    pass"))
    wait_for_turn(page)
    cell = page.locator(".entry-tool")
    expect(cell.locator(".state")).to_have_text("Stopped at its time limit")
    expect(cell.locator("pre.output")).to_have_class(re.compile(r"\berror\b"))
    expect(page.get_by_role("status")).to_contain_text("1 of 1 cell failed (stopped at its time limit)")


def test_output_cut_at_its_limit_is_not_an_error(page: Any) -> None:
    send(page, code_message("for n in range(300):\n    print(n, 'x' * 1000)"))  # 300 kB: past the 100 kB cap
    wait_for_turn(page)
    cell = page.locator(".entry-tool")
    expect(cell.locator(".state")).to_have_text("Output cut at its size limit")
    expect(cell.locator(".notice")).to_contain_text("below is its beginning, and the reason at its end")
    expect(cell.locator("pre.output")).not_to_have_class(re.compile(r"\berror\b"))
    expect(page.get_by_role("status")).not_to_contain_text("failed")


def test_stop_ends_a_running_turn_and_keeps_nothing_of_it(page: Any, quick: Served) -> None:
    before = len(api_get(page, quick, "/v1/conversations"))
    send(page, code_message("import time\ntime.sleep(2.5)\nprint('too late')"))
    page.get_by_label("Message").fill("typed during the turn")
    page.get_by_label("Message").press("Control+Enter")  # said, not ignored
    expect(page.get_by_role("status")).to_contain_text("A turn is still running")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("status")).to_have_text("Stopped: the turn was cancelled, and nothing of it was saved")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    page.wait_for_timeout(3000)  # past the cell's end: it must not have been stored meanwhile
    assert len(api_get(page, quick, "/v1/conversations")) == before
    expect(page.locator("#welcome")).to_be_visible()


def test_the_first_visit_names_the_model_the_command_and_examples(page: Any) -> None:
    welcome = page.locator("#welcome")
    expect(welcome).to_contain_text("No model is connected: the offline model answers")
    expect(welcome.locator("pre")).to_contain_text("MISTRAL_API_KEY=... make serve")
    examples = welcome.locator("button.example")
    expect(examples).to_have_count(3)
    examples.first.click()
    expect(page.get_by_label("Message")).to_have_value(re.compile(r"^Plot the function"))
    expect(page.get_by_label("Message")).to_be_focused()


def test_titles_leave_out_code_fences_can_be_renamed_and_mark_branches(page: Any, quick: Served) -> None:
    send(page, code_message("total = 6 * 7\nprint(total)"))
    wait_for_turn(page)
    expect(page.locator("#conversation-title")).to_have_text("Python: total = 6 * 7")
    expect(page.locator("#conversation-subtitle")).to_have_text("Model mistral-medium-latest · tools: code interpreter")
    expect(page.locator("#conversation-list .name").first).to_have_text("Python: total = 6 * 7")
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("New title").fill("The answer")
    page.get_by_label("New title").press("Enter")
    expect(page.locator("#conversation-title")).to_have_text("The answer")
    original = conversation_id(page)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#conversation-list .name").first).to_have_text("The answer")  # kept in this browser
    page.locator("#conversation-list .open").first.click()
    page.locator(".entry-tool").first.get_by_role("button", name="Restart from here").click()
    send(page, code_message("print(total + 1)"))
    wait_for_turn(page)
    assert conversation_id(page) != original
    expect(page.locator("#conversation-subtitle")).to_contain_text("branch of “The answer”")
    expect(page.locator("#conversation-list .branch")).to_have_text(["↳ branch of “The answer”"])
    stored = api_get(page, quick, f"/v1/conversations/{conversation_id(page)}")
    assert stored["metadata"]["branch_of"] == original


def test_a_dropped_csv_is_attached_and_a_dataframe_shows_as_a_table(page: Any) -> None:
    page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File(['city,visits\\nLyon,3\\nLille,5\\n'], 'visits.csv', { type: 'text/csv' }));
        const form = document.getElementById('composer');
        for (const kind of ['dragover', 'drop']) {
            form.dispatchEvent(new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true }));
        }
    }""")
    expect(page.get_by_role("list", name="Attached files")).to_contain_text("visits.csv")
    expect(page.locator("#attach-hint")).to_contain_text("working directory")
    send(page, code_message("import pandas as pd\ndf = pd.read_csv('visits.csv')\nprint('rows:', len(df))\ndf"))
    wait_for_turn(page)
    table = page.locator(".entry-tool table.frame")
    expect(table.locator("thead th")).to_have_text(["", "city", "visits"])
    expect(table.locator("tbody tr")).to_have_text([re.compile(r"0\s*Lyon\s*3"), re.compile(r"1\s*Lille\s*5")])
    expect(page.locator(".entry-tool pre.output")).to_have_text("rows: 2")  # the table replaces the text display
    expect(page.locator(".entry-user").last.locator(".chips")).to_contain_text("in the working directory")


def test_copy_buttons_copy_the_code_and_the_output(page: Any) -> None:
    send(page, code_message("print('copied ' * 2)"))
    wait_for_turn(page)
    cell = page.locator(".entry-tool")
    cell.get_by_role("button", name="Copy output").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == "copied copied \n"
    cell.get_by_role("button", name="Copy code").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == "print('copied ' * 2)"


def test_a_saved_figure_shows_once_as_a_thumbnail_that_opens_whole(page: Any) -> None:
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.savefig('line.png')\nplt.show()"
    send(page, code_message(plot))
    wait_for_turn(page)
    images = page.locator(".entry-tool img.plot")
    expect(images).to_have_count(1)
    expect(images).to_have_attribute("alt", "line.png")
    page.wait_for_function("() => { const img = document.querySelector('.entry-tool img.plot');"
                           " return img && img.complete && img.naturalWidth > 0; }")  # loaded, laid out
    small = images.bounding_box()["height"]
    images.click()
    expect(images).to_have_class(re.compile(r"\bwhole\b"))
    assert images.bounding_box()["height"] >= small


def _job(page: Any, requests: list[dict[str, Any]]) -> Any:
    page.get_by_role("tab", name="Batches").click()
    page.get_by_label("Requests (JSONL").fill("\n".join(json.dumps(r) for r in requests))
    page.get_by_role("button", name="Start batch").click()
    return page.locator("#batch-list li.job").first


def test_a_batch_with_a_failed_request_says_so_and_its_requests_stay_out_of_the_chat(page: Any, quick: Served) -> None:
    job = _job(page, [{"custom_id": "good", "body": {"inputs": code_message("print(1)")}},
                      {"custom_id": "bad", "body": {"inputs": "x", "tools": [{"type": "no_such_tool"}]}}])
    expect(job).to_have_attribute("data-status", re.compile("SUCCESS|FAILED"), timeout=60_000)
    expect(job.locator(".state")).to_have_text(re.compile("Finished with failures|Failed"))
    expect(job.locator(".state")).to_have_class(re.compile(r"\bbad\b"))
    expect(job).to_contain_text("1 of 2 succeeded · 1 failed")
    page.get_by_role("tab", name="Chat").click()
    stored = api_get(page, quick, "/v1/conversations")
    assert any((c.get("metadata") or {}).get("batch_job_id") for c in stored)
    names = page.locator("#conversation-list .name").all_inner_texts()
    assert all(c["id"] not in names for c in stored)
    expect(page.locator("#conversation-list li")).to_have_count(
        len([c for c in stored if not (c.get("metadata") or {}).get("batch_job_id")]))


def test_making_an_old_version_active_says_so(page: Any) -> None:
    agent_with_two_versions(page, "versioned")
    expect(page.get_by_role("alert")).to_contain_text("version 1")
    page.get_by_role("button", name="Make version 0 active").click()
    expect(page.get_by_role("alert")).to_have_text("Version 0 of versioned is now active.")



def test_a_cells_lines_show_as_they_are_printed_and_stop_ends_it(page: Any) -> None:
    send(page, code_message("import time\nfor n in range(20):\n    print('tick', n, flush=True)\n    time.sleep(0.4)"))
    output = page.locator(".entry-tool pre.output")
    expect(output).to_contain_text("tick 1")  # while the cell runs: it would end 8 s later
    assert page.locator("#transcript").get_attribute("data-state") == "streaming"
    expect(page.get_by_role("status")).to_contain_text("Running code")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("status")).to_have_text("Stopped: the turn was cancelled, and nothing of it was saved")


def test_a_cancelled_job_says_cancelled_and_does_not_call_its_unrun_requests_failures(page: Any) -> None:
    slow = code_message("import time\ntime.sleep(1)\nprint('ran')")
    job = _job(page, [{"custom_id": f"r{n}", "body": {"inputs": slow}} for n in range(6)])
    job.get_by_role("button", name="Cancel").click()
    expect(job).to_have_attribute("data-status", "CANCELLED", timeout=60_000)
    expect(job.locator(".state")).to_have_text("Cancelled")
    expect(job.locator(".state")).not_to_have_class(re.compile(r"\bbad\b"))
    expect(job.locator(".counts")).to_contain_text(re.compile(r"(failed or cancelled|not run)"))
    expect(job.locator(".progress .failed")).to_have_count(0)  # grey, not the red of failures
