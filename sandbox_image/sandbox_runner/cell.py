"""Run one cell of code the way Jupyter does: statements, then the value of a trailing expression.

Runs inside the forked child, after the limits are in place. Tracebacks are cut down to the
user's own frames and point at the cell's line numbers.
"""

from __future__ import annotations

import ast
import importlib.util
import linecache
import os
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CELL_FILENAME = "<cell>"
MAX_DISPLAY_CHARS = 20_000
# A trailing DataFrame is also given as a table (the page shows it as one): its first rows and
# columns, each cell as text, so that its size stays far below what an entry may hold.
MAX_TABLE_ROWS, MAX_TABLE_COLUMNS, MAX_CELL_CHARS = 50, 20, 40


@dataclass
class CellOutcome:
    display: str | None = None
    table: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    memory_error: bool = False
    figures: list[str] = field(default_factory=list)


def _register_source(code: str) -> None:
    # linecache lets traceback print the offending line of the cell, as Jupyter does.
    linecache.cache[CELL_FILENAME] = (len(code), None, code.splitlines(True), CELL_FILENAME)


def _user_traceback(exc: BaseException) -> str:
    tb: types.TracebackType | None = exc.__traceback__
    # Drop the runner's own frames: the user sees the cell's frames and what they called.
    while tb is not None and tb.tb_frame.f_code.co_filename != CELL_FILENAME:
        tb = tb.tb_next
    exc = exc.with_traceback(tb)
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc))
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _display(value: Any) -> str | None:
    """The value as IPython shows it (its pretty printer: long lists one item a line, dicts
    sorted, DataFrames as their text table), or repr() where IPython is not installed."""
    if value is None:
        return None
    printer = load_pretty()
    text = printer.pretty(value, max_width=79, max_seq_length=1000) if printer is not None else repr(value)
    if len(text) > MAX_DISPLAY_CHARS:
        text = text[:MAX_DISPLAY_CHARS] + f"\n[display truncated at {MAX_DISPLAY_CHARS} characters]"
    return text


def _cell_text(value: Any) -> str:
    # Floats as pandas shows them (display.precision 6, NaN), not 0.30000000000000004.
    if isinstance(value, float) and value != value:
        return "NaN"
    text = format(value, ".6g") if isinstance(value, float) else str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _table(value: Any) -> dict[str, Any] | None:
    """A pandas DataFrame or Series as a table of text (IPython's rich display shows it as HTML;
    this is the same table without markup, which nothing downstream has to sanitise)."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(value, (pandas.DataFrame, pandas.Series)):
        return None
    try:
        frame = value.to_frame() if isinstance(value, pandas.Series) else value
        shown = frame.iloc[:MAX_TABLE_ROWS, :MAX_TABLE_COLUMNS]
        return {"columns": [_cell_text(c) for c in shown.columns], "index": [_cell_text(i) for i in shown.index],
                "rows": [[_cell_text(x) for x in row] for row in shown.itertuples(index=False, name=None)],
                "shape": [int(frame.shape[0]), int(frame.shape[1])],
                "index_name": "" if frame.index.name is None else _cell_text(frame.index.name)}
    except Exception:  # noqa: BLE001 - the text display stays; a table is a nicety
        return None


PRETTY_MODULE = "_sandbox_ipython_pretty"


def load_pretty() -> types.ModuleType | None:
    """IPython's pretty printer (IPython/lib/pretty.py, standard library only), loaded from its
    file alone: importing it through the IPython package pulls in the whole shell, ~45 MB the
    zygote and every spare would carry. The zygote loads it once; children inherit it."""
    module = sys.modules.get(PRETTY_MODULE)
    if module is not None:
        return module
    package = importlib.util.find_spec("IPython")  # locates the package without importing it
    if package is None or package.origin is None:
        return None
    spec = importlib.util.spec_from_file_location(PRETTY_MODULE, Path(package.origin).parent / "lib" / "pretty.py")
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PRETTY_MODULE] = module
    spec.loader.exec_module(module)
    return module


def run_cell(code: str, namespace: dict[str, Any]) -> CellOutcome:
    outcome = CellOutcome()
    _register_source(code)
    try:
        tree = ast.parse(code, filename=CELL_FILENAME, mode="exec")
        trailing: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            trailing = ast.Expression(body=tree.body.pop().value)
        exec(compile(tree, CELL_FILENAME, "exec"), namespace)  # noqa: S102 - this is the sandbox
        if trailing is not None:
            value = eval(compile(trailing, CELL_FILENAME, "eval"), namespace)  # noqa: S307
            outcome.display = _display(value)
            outcome.table = _table(value)
    except MemoryError as exc:
        outcome.memory_error = True
        outcome.error = {"name": "MemoryError", "value": str(exc), "traceback": _safe_traceback(exc)}
    except BaseException as exc:  # noqa: BLE001 - report everything, including SystemExit
        outcome.error = {"name": type(exc).__name__, "value": _safe_str(exc), "traceback": _safe_traceback(exc)}
    return outcome


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not break reporting
        return "<unprintable exception>"


def _safe_traceback(exc: BaseException) -> str:
    try:
        return _user_traceback(exc)
    except Exception:  # noqa: BLE001
        return f"{type(exc).__name__}: {_safe_str(exc)}\n"


SAVED_BY_CODE = "_saved_by_the_code"


def note_figures_the_code_saves() -> None:
    """Mark a figure the code saves to a file itself (``plt.savefig('plot.png')``), so that
    save_figures does not return the same figure a second time under its own name."""
    from matplotlib.figure import Figure

    savefig = Figure.savefig

    def noting_savefig(self: Any, fname: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = savefig(self, fname, *args, **kwargs)
        if isinstance(fname, (str, os.PathLike)):  # a file, not a buffer the code reads back
            setattr(self, SAVED_BY_CODE, True)
            # As saved: a later change marks it stale again (saving with bbox_inches="tight"
            # leaves it stale although nothing changed).
            self.stale = False
        return outcome

    Figure.savefig = noting_savefig  # type: ignore[method-assign]


def save_figures(workdir: str) -> list[str]:
    """Write every open matplotlib figure as plot_<n>.png and close them; a figure the code saved
    to a file itself, and did not change since (matplotlib marks a changed figure stale), is
    already in the working directory and is not written twice."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    names = []
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        if getattr(figure, SAVED_BY_CODE, False) and not figure.stale:
            continue
        name = f"plot_{len(names)}.png"
        figure.savefig(f"{workdir}/{name}", format="png")
        names.append(name)
    pyplot.close("all")
    return names
