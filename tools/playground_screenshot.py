"""Take docs/playground.png (the README's screenshot) and measure the page's first paint.

Starts `make serve` on a fresh DATA_DIR, runs one turn with code, a table and a plot in Debian's
headless Chromium, and saves the page as a user sees it. Run it after changing the page:

    .venv/bin/python tools/playground_screenshot.py [--out docs/playground.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local.launcher import Server  # noqa: E402

CODE = """import pandas as pd
import matplotlib.pyplot as plt

sales = pd.DataFrame({"month": ["Jan", "Feb", "Mar", "Apr", "May", "Jun"],
                      "revenue": [12.5, 14.1, 13.2, 17.8, 19.4, 22.0]})
print(sales.describe().loc[["mean", "max"]])
sales.plot(x="month", y="revenue", marker="o", title="Revenue (k€)", figsize=(6, 3))
plt.tight_layout()"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "playground.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    data_dir = tempfile.mkdtemp(prefix="agents-screenshot-")
    server = Server({"DATA_DIR": data_dir, "SANDBOX_WORKERS": "2", "AUTH_MODE": "auto", "API_KEYS": ""})
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(server.url + "/")
            paint = page.evaluate("""() => new Promise(resolve => new PerformanceObserver((list, observer) => {
                const entry = list.getEntries().find(e => e.name === 'first-contentful-paint');
                if (entry) { observer.disconnect(); resolve(entry.startTime); }
            }).observe({type: 'paint', buffered: true}))""")
            page.wait_for_selector("body[data-ready=true]")
            page.get_by_label("Message").fill(f"Summarise the sales and plot the revenue\n```python\n{CODE}\n```")
            page.get_by_role("button", name="Send").click()
            page.wait_for_function("() => document.getElementById('transcript').dataset.state === 'idle'"
                                   " && document.querySelector('img.plot')?.naturalWidth > 0")
            page.locator("img.plot").scroll_into_view_if_needed()
            page.screenshot(path=args.out)
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"wrote {args.out}; first contentful paint {paint:.0f} ms")


if __name__ == "__main__":
    main()
