"""Security review findings on the playground, as tests of what a user relies on.

Each test asserts the safe behaviour; each failed when the review found it. The attacker
controls model output, code output and the files the code writes.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.harness import KEYS_MODE_ONLY, Served
from tests.browser.test_playground_browser import code_message, send, wait_for_turn

# An SVG the code writes: a picture, and a script that says where it ran if it ever runs.
SVG_PROBE = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40"/>'
             '<script>document.title = "ran at " + location.origin</script></svg>')


@KEYS_MODE_ONLY
def test_an_svg_the_code_wrote_runs_no_script_at_the_playground_origin_when_opened_in_its_own_tab(
        page: Any, served: Served) -> None:
    send(page, code_message(f"open('chart.svg', 'w').write({SVG_PROBE!r})\nprint('drawn')"))
    wait_for_turn(page)
    expect(page.locator(".entry-tool pre.output")).to_have_text("drawn")
    expect(page.locator("#transcript .file")).to_have_count(1)  # shown, inline or as a download
    # Inline images get their URL once fetched with the key: wait until every one has it.
    page.wait_for_function("() => Array.from(document.querySelectorAll('#transcript img')).every(i => i.src)")
    sources = page.locator("#transcript img").evaluate_all("imgs => imgs.map(i => i.src)")
    for source in sources:
        # What the user does with a picture they want bigger: its address, in a tab of its own.
        tab = page.context.new_page()
        try:
            tab.goto(source)
            tab.wait_for_timeout(500)
            assert tab.title() != f"ran at {served.url}", f"the SVG's script ran at the page's origin ({source})"
        finally:
            tab.close()


@KEYS_MODE_ONLY
def test_a_hostile_answer_or_code_cannot_freeze_the_page(page: Any) -> None:
    timings = page.evaluate("""async () => {
        const { renderMarkdown } = await import('./markdown.js');
        const { highlightPython } = await import('./highlight.js');
        const time = (render) => { const start = performance.now(); render(); return performance.now() - start; };
        return {
            // About the 100 kB a cell may print, as an answer quotes it (after a ``` that ends the fence).
            markdown: time(() => renderMarkdown('[a '.repeat(33000))),
            // Code a model writes: one long number that a letter follows.
            code: time(() => highlightPython('1'.repeat(30000) + 'x')),
        };
    }""")
    # Linear renderers do either in a few milliseconds; one render is repeated on every streamed delta.
    assert timings["markdown"] < 500 and timings["code"] < 500, timings
