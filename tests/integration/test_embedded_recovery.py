"""What a new `make serve` takes back from one that was killed: here, the data of executions that
were in transit (outputs and session states under sandbox/ that no turn adopted)."""

from __future__ import annotations

from pathlib import Path


def test_start_up_removes_what_executions_left_in_transit_and_nothing_else(tmp_path: Path) -> None:
    from agentsapi.services import embedded_storage
    from agentsapi.settings import Settings

    settings = Settings().model_copy(update={"storage": "sqlite", "data_dir": str(tmp_path / "data")})
    storage = embedded_storage(settings)
    blobs = storage.blobs
    blobs.put("sandbox/0f1e/out/0", b"an output a crashed turn never adopted")
    blobs.put("sandbox/0f1e/out/session", b"a state nobody will resume")
    blobs.put("files/ws/file-1", b"a stored file")
    blobs.put("sessions/ws/conv/entry", b"a kept session")
    storage.recover()
    assert blobs.keys("sandbox/") == []
    assert blobs.get("files/ws/file-1") == b"a stored file"
    assert blobs.get("sessions/ws/conv/entry") == b"a kept session"
