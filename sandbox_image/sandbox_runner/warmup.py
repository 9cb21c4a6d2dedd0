"""Warm-up: exercise the preloaded libraries once, in the zygote and again in each spare.

In the zygote it fills caches that every child inherits (fonts, the Agg renderer, pandas'
plotting backend). In a spare, waiting for its request, it also takes the copy-on-write page
faults that a typical data cell would otherwise pay on the critical path: a forked child
touching pandas and matplotlib objects copies tens of megabytes of pages.
"""

from __future__ import annotations

import sys

CELL = """
import io
import matplotlib.pyplot as plt
import pandas as pd
frame = pd.DataFrame({"x": list(range(50)), "y": [i * i for i in range(50)]})
repr(frame.describe())
frame.plot(x="x", y="y", title="warm-up")
plt.gcf().savefig(io.BytesIO(), format="png")
plt.close("all")
"""


def run(loaded: list[str]) -> None:
    if "pandas" not in loaded or "matplotlib.pyplot" not in loaded:
        return
    try:
        exec(compile(CELL, "<warm-up>", "exec"), {"__name__": "__warmup__"})  # noqa: S102 - our own code
    except Exception as exc:  # noqa: BLE001 - a failed warm-up costs speed, not correctness
        print(f"sandbox: warm-up failed: {exc}", file=sys.stderr)
