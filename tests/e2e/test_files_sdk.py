"""Files and sessions through the official SDK against `make serve`."""

from __future__ import annotations

import pytest
from mistralai.client import Mistral


def test_uploaded_csv_is_read_by_pandas(client: Mistral) -> None:
    uploaded = client.files.upload(file={"file_name": "sales.csv", "content": b"region,amount\nnorth,10\nsouth,32\n"},
                                   purpose="ocr")
    assert client.files.retrieve(file_id=uploaded.id).filename == "sales.csv"
    response = client.beta.conversations.start(
        model="mistral-small-latest", tools=[{"type": "code_interpreter"}],
        inputs=[{"role": "user", "content": [
            {"type": "text", "text": "```python\nimport pandas as pd\nprint(pd.read_csv('sales.csv').amount.sum())\n```"},
            {"type": "tool_file", "tool": "code_interpreter", "file_id": uploaded.id, "file_name": "sales.csv"}]}])
    assert response.outputs[0].info["code_output"] == "42\n"


def test_a_plot_comes_back_as_a_downloadable_png(client: Mistral) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('trend')"
    response = client.beta.conversations.start(model="m", tools=[{"type": "code_interpreter"}],
                                               inputs=f"```python\n{code}\n```")
    message = response.outputs[-1]
    chunk = message.content[0]
    assert chunk.type == "tool_file" and chunk.tool == "code_interpreter"
    assert (chunk.file_name, chunk.file_type) == ("plot_0.png", "png")
    png = client.files.download(file_id=chunk.file_id).read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert client.files.get_signed_url(file_id=chunk.file_id).url.startswith("http")


def test_plot_chunk_streams_as_a_message_delta(client: Mistral) -> None:
    with client.beta.conversations.start_stream(model="m", tools=[{"type": "code_interpreter"}],
                                                inputs="```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```") as stream:
        deltas = [e.data.content for e in stream if e.event == "message.output.delta"]
    assert getattr(deltas[0], "type", None) == "tool_file"


def test_variables_persist_between_turns(client: Mistral) -> None:
    first = client.beta.conversations.start(model="m", tools=[{"type": "code_interpreter"}],
                                            inputs="```python\ntotal = sum(range(10))\n```")
    second = client.beta.conversations.append(conversation_id=first.conversation_id,
                                              inputs="```python\nprint(total * 2)\n```")
    assert second.outputs[0].info["code_output"] == "90\n"


def test_files_are_private_to_a_workspace(client: Mistral, server_url: str) -> None:
    uploaded = client.files.upload(file={"file_name": "secret.txt", "content": b"top secret"})
    other = Mistral(api_key="someone-else", server_url=server_url)
    with pytest.raises(Exception) as raised:
        other.files.download(file_id=uploaded.id).read()
    assert getattr(raised.value, "status_code", None) == 404
    assert client.files.delete(file_id=uploaded.id).deleted is True


def test_the_sdk_uploads_with_an_expiry_and_lists_with_filters(client: Mistral) -> None:
    """Through make serve's front end, which streams uploads to disk before the handler sees them."""
    uploaded = client.files.upload(file={"file_name": "expiring-notes.txt", "content": b"soon gone\n"},
                                   purpose="batch", expiry=3)
    assert uploaded.expires_at == uploaded.created_at + 3 * 3600
    listed = client.files.list(search="EXPIRING-notes", include_total=True)
    assert [f.id for f in listed.data] == [uploaded.id] and listed.total == 1
    with pytest.raises(Exception, match="visibility"):
        client.files.upload(file={"file_name": "private.txt", "content": b"x"}, visibility="user")
