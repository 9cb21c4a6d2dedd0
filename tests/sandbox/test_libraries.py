"""What an analyst expects of the interpreter: values shown as IPython shows them, and the usual
libraries importable and working in the sandbox (the same pinned set as the Lambda image)."""

from __future__ import annotations

from typing import Any

import pytest

from agentsapi.sandbox.port import ExecutionRequest

FIBONACCI = """
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        yield a
        a, b = b, a + b
fibonacci_20 = list(fib(20))
fibonacci_20
"""


@pytest.mark.parametrize(("code", "shown"), [
    # Mistral's own connector example: a long list one item a line, as IPython prints it.
    (FIBONACCI, "[0,\n 1,\n 1,\n 2,\n 3,\n 5,\n 8,\n 13,\n 21,\n 34,\n 55,\n 89,\n 144,\n 233,\n 377,\n 610,\n"
                " 987,\n 1597,\n 2584,\n 4181]"),
    ("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})", "   a  b\n0  1  x\n1  2  y"),
    ("import sympy\nx = sympy.Symbol('x')\n(x + 1)**2", "(x + 1)**2"),
    ("{'b': 1, 'a': [1, 2]}", "{'b': 1, 'a': [1, 2]}"),
    ("list(range(3))", "[0, 1, 2]"),
    ("x = 1", None),
])
def test_the_last_value_is_shown_as_ipython_shows_it(sandbox: Any, code: str, shown: str | None) -> None:
    result = sandbox.execute(ExecutionRequest(code=code, timeout_s=20))
    assert result.status == "ok", result.code_output()
    assert result.display == shown


def test_print_and_tracebacks_are_unchanged(sandbox: Any) -> None:
    result = sandbox.execute(ExecutionRequest(code="print([1, 2])\n1 / 0", timeout_s=20))
    assert result.outputs[0].text == "[1, 2]\n" and result.display is None
    assert result.error is not None and result.error.traceback.endswith("ZeroDivisionError: division by zero\n")


ANALYST = r"""
import io, pandas as pd
frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.1, 3.9, 6.2, 7.8]})
frame.to_excel("table.xlsx", index=False)
print("excel", pd.read_excel("table.xlsx").shape)
frame.to_parquet("table.parquet")
print("parquet", pd.read_parquet("table.parquet")["y"].sum())
import seaborn as sns
sns.scatterplot(data=frame, x="x", y="y")
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit(frame[["x"]], frame["y"])
print("sklearn", round(float(model.coef_[0]), 2))
import statsmodels.api as sm
print("statsmodels", round(float(sm.OLS(frame["y"], sm.add_constant(frame["x"])).fit().params["x"]), 2))
from PIL import Image
Image.new("RGB", (4, 3), "red").save("red.png")
print("pillow", Image.open("red.png").size)
from tabulate import tabulate
print(tabulate([[1, 2]], headers=["a", "b"]).splitlines()[0].split())
import networkx as nx
print("networkx", nx.shortest_path(nx.path_graph(4), 0, 3))
"""


def test_the_libraries_an_analyst_expects_work(sandbox: Any) -> None:
    result = sandbox.execute(ExecutionRequest(code=ANALYST, timeout_s=60))
    assert result.status == "ok", result.code_output()
    assert [o.stream for o in result.outputs] == ["stdout"], result.code_output()  # no warning on the way
    lines = result.outputs[0].text.splitlines()
    assert lines == ["excel (4, 2)", "parquet 20.0", "sklearn 1.94", "statsmodels 1.94", "pillow (4, 3)",
                     "['a', 'b']", "networkx [0, 1, 2, 3]"], lines
    assert {f.name for f in result.files} == {"table.xlsx", "table.parquet", "red.png", "plot_0.png"}


def test_input_files_are_not_session_state(sandbox: Any) -> None:
    """A file given to the conversation comes with every turn: while the code leaves it as it
    is, it is not carried as state and never produces a "not carried" note, however large."""
    import base64

    from agentsapi.sandbox.port import SandboxFile

    rows = "".join(f"{n},{n * n}\n" for n in range(300_000)).encode()  # ~3.7 MB, over the session limit
    data = SandboxFile(name="data.csv", content_b64=base64.b64encode(b"n,sq\n" + rows).decode())
    first = sandbox.execute(ExecutionRequest(code="import pandas as pd\nframe = pd.read_csv('data.csv').tail(10)\n"
                                                  "len(pd.read_csv('data.csv'))",
                                             files=[data], carry_session=True, timeout_s=30))
    assert first.status == "ok" and first.display == "300000", first.code_output()
    assert "not carried" not in first.code_output()
    assert first.session is not None and first.session.bytes < 100_000  # the frame, not the file
    second = sandbox.execute(ExecutionRequest(code="int(frame['sq'].iloc[-1])", files=[data], carry_session=True,
                                              session_state=first.session.content(), timeout_s=30))
    assert second.status == "ok" and second.display == str(299_999 ** 2), second.code_output()
    assert "not carried" not in second.code_output()


def test_a_figure_the_code_saved_is_returned_once_and_a_changed_one_again(sandbox: Any) -> None:
    code = """import matplotlib.pyplot as plt
plt.plot([1, 2], [2, 1])
plt.savefig("saved.png", bbox_inches="tight")
plt.show()
changed, axes = plt.subplots()
axes.plot([1, 2])
changed.savefig("before_title.png")
axes.set_title("after saving")
"""
    result = sandbox.execute(ExecutionRequest(code=code, timeout_s=60))
    assert result.status == "ok", result.code_output()
    # The saved figure is not returned a second time as plot_<n>.png; the one changed after its
    # save is, as it looks at the end of the cell.
    assert sorted(f.name for f in result.files) == ["before_title.png", "plot_0.png", "saved.png"]


def test_a_trailing_dataframe_is_also_a_table_of_text(sandbox: Any) -> None:
    code = ("import pandas as pd\n"
            "pd.DataFrame({'city': ['Lyon', 'Lille'], 'share': [0.1 + 0.2, float('nan')]}).set_index('city')")
    result = sandbox.execute(ExecutionRequest(code=code, timeout_s=60))
    assert result.status == "ok", result.code_output()
    assert result.display is not None and "Lyon" in result.display  # the text display is kept (the API's)
    assert result.table is not None
    assert (result.table.columns, result.table.index, result.table.rows) == (["share"], ["Lyon", "Lille"],
                                                                            [["0.3"], ["NaN"]])
    assert (result.table.shape, result.table.index_name) == ((2, 1), "city")
    big = sandbox.execute(ExecutionRequest(code="import pandas as pd\npd.DataFrame({f'c{i}': range(500) for i in range(40)})",
                                           timeout_s=60))
    assert big.table is not None and big.table.shape == (500, 40)
    assert len(big.table.rows) == 50 and len(big.table.columns) == 20  # the first rows and columns only
    assert sandbox.execute(ExecutionRequest(code="[1, 2]", timeout_s=60)).table is None
