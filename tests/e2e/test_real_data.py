"""Data work at real sizes through the official SDK against `make serve` (issue 13).

A CSV of tens of MB goes in, pandas reads it in one turn and the DataFrame is used in the next
without re-reading; a 50 MB file the code writes comes back intact; an .xlsx written by one turn
is read back by the next. Inputs, outputs and the session state travel by reference (the
worker's exchange directory), not through the worker's pipe. Sizes keep `make test` quick; the
200 MB figures are in benchmarks/real_data.py.
"""

from __future__ import annotations

import hashlib

import pytest
from mistralai.client import Mistral

ROWS = 3_000_000  # about 29 MB of CSV, a 48 MB DataFrame in the session


def code(text: str) -> str:
    return f"```python\n{text}\n```"


def outputs_of(response: object) -> str:
    return "".join(o.info["code_output"] for o in response.outputs if o.type == "tool.execution")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def big_csv() -> bytes:
    return b"a,b\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(ROWS))


def test_a_large_csv_is_read_once_and_the_dataframe_is_used_in_the_next_turn(client: Mistral, big_csv: bytes) -> None:
    uploaded = client.files.upload(file={"file_name": "data.csv", "content": big_csv})
    assert uploaded.size_bytes == len(big_csv) > 25_000_000
    first = client.beta.conversations.start(
        model="m", tools=[{"type": "code_interpreter"}],
        inputs=[{"role": "user", "content": [
            {"type": "text", "text": code("import pandas as pd\ndf = pd.read_csv('data.csv')\nprint(len(df), df.b.sum())")},
            {"type": "tool_file", "tool": "code_interpreter", "file_id": uploaded.id, "file_name": "data.csv"}]}])
    expected_sum = sum(i % 7 for i in range(ROWS))
    assert outputs_of(first) == f"{ROWS} {expected_sum}\n"
    # The next turn uses df as it was left: the file is not read again (it is deleted first, to be sure).
    second = client.beta.conversations.append(
        conversation_id=first.conversation_id,
        inputs=code("import os\nos.remove('data.csv')\nprint(int(df.a.max()), int(df.b.sum()))"))
    text = outputs_of(second)
    assert text == f"{ROWS - 1} {expected_sum}\n", text
    assert "not carried" not in text  # the input file is an input, never session state


def test_a_50_mb_file_written_by_the_code_downloads_intact(client: Mistral) -> None:
    response = client.beta.conversations.start(model="m", tools=[{"type": "code_interpreter"}], inputs=code(
        "import hashlib, os\ndata = os.urandom(50 * 1000 * 1000)\nopen('blob.bin', 'wb').write(data)\n"
        "print(hashlib.sha256(data).hexdigest())\ndel data"))
    digest = outputs_of(response).strip()
    [chunk] = [c for c in response.outputs[-1].content if getattr(c, "type", None) == "tool_file"]
    assert chunk.file_name == "blob.bin"
    assert client.files.retrieve(file_id=chunk.file_id).size_bytes == 50_000_000
    downloaded = client.files.download(file_id=chunk.file_id).read()
    assert len(downloaded) == 50_000_000 and hashlib.sha256(downloaded).hexdigest() == digest


def test_an_xlsx_written_by_one_turn_is_read_by_the_next(client: Mistral) -> None:
    first = client.beta.conversations.start(model="m", tools=[{"type": "code_interpreter"}], inputs=code(
        "import pandas as pd\npd.DataFrame({'city': ['Lyon', 'Oslo'], 'temp': [21.5, 9.0]})"
        ".to_excel('report.xlsx', index=False)\nprint('written')"))
    assert outputs_of(first) == "written\n"
    assert any(getattr(c, "file_name", None) == "report.xlsx" for c in first.outputs[-1].content)
    second = client.beta.conversations.append(conversation_id=first.conversation_id, inputs=code(
        "import pandas as pd\nsheet = pd.read_excel('report.xlsx')\nprint(sheet.temp.sum(), list(sheet.city))"))
    assert outputs_of(second) == "30.5 ['Lyon', 'Oslo']\n"
