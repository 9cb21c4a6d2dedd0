"""Moving an execution's data in and out by reference, not inside the request and the response.

Files of hundreds of MB and a session of up to 256 MiB cannot travel in a Lambda payload (6 MB)
or, sensibly, as base64 in a JSON line. The request names where they are instead, and the
trusted runner moves them, before the child starts and after it (and every process of the
sandbox uid) is dead. User code never takes part: it has no network in either mode.

Two ways, chosen by the request's ``exchange`` field:

- ``{"dir": "<id>"}`` (the local worker): the API side writes the inputs into
  ``<exchange root>/<id>/`` on the worker's own tmpfs, and the runner takes them with a rename
  (no copy). Outputs are renamed into ``<exchange root>/<id>/out/``, where the API side reads
  them once the response is in. Refs are plain names inside that directory.
- ``{"outputs": [PUT url, ...], "session": PUT url, "resolve": {host: address}}`` (Lambda): refs
  of inputs are presigned GET URLs, outputs go to presigned PUT URLs, all signed by the API side
  for exactly this execution's objects. ``resolve`` carries addresses the API side looked up, so
  the sandbox needs no DNS (its VPC has none).

Without ``exchange`` everything is inline (base64), the protocol's first form.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import re
import shutil
import socket
import ssl
import stat
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from . import scrub
from .protocol import BadRequest

_ID = re.compile(r"[0-9a-f]{32}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 1 << 20
HTTP_TIMEOUT_S = 60.0
SESSION_SLOT = "session"


class TransferFailed(RuntimeError):
    """An input could not be fetched or an output not delivered; the message says which and why."""


class Exchange(Protocol):
    def begin_inputs(self) -> None:
        """Called before the first ``fetch``."""
        ...

    def fetch(self, ref: str, target: Path, limit: int) -> int:
        """Put the input ``ref`` at ``target`` (a new file); returns its size."""
        ...

    def end_inputs(self) -> None:
        """Called once every input is in place, before user code runs."""
        ...

    def begin_outputs(self) -> None:
        """Called once the execution's processes are dead, before the first ``export``."""
        ...

    def export(self, source: Path, slot: str) -> str:
        """Deliver the file at ``source`` as output ``slot`` ("0", "1"... or "session"); returns its ref."""
        ...

    def slots(self) -> int:
        """How many output files can be delivered."""
        ...

    def keep(self) -> str | None:
        """What of the exchange directory must outlive the execution's wipe (the outputs handed over)."""
        ...


def ensure_directory(path: Path, uid: int) -> None:
    """``path`` is a directory of ours, mode 0700: whatever user code put in its place goes."""
    try:
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
            os.chmod(path, 0o700)
            return
        if stat.S_ISDIR(info.st_mode):
            scrub.remove_entries(str(path.parent), [path.name])
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    path.mkdir(mode=0o700)


def new_file(target: Path) -> int:
    """O_EXCL|O_NOFOLLOW: the trusted side never writes through a planted link."""
    return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


class DirectoryExchange:
    """The local worker's: ``<root>/<id>/`` on the same tmpfs as the work root."""

    def __init__(self, root: Path, execution: str, uid: int, max_outputs: int) -> None:
        if not _ID.fullmatch(execution):
            raise BadRequest("exchange.dir must be 32 lower-case hex digits")
        self.root, self.id, self.uid, self.max_outputs = root, execution, uid, max_outputs

    def begin_inputs(self) -> None:
        """Before user code runs, the exchange root holds nothing but this execution's inputs."""
        ensure_directory(self.root, self.uid)
        scrub.empty_except(str(self.root), {self.id})

    def fetch(self, ref: str, target: Path, limit: int) -> int:
        if not ref or "/" in ref or ref in (".", ".."):
            raise BadRequest("a file ref must be a plain name inside the exchange directory")
        try:
            folder = os.open(self.root / self.id, _DIR_FLAGS)
        except OSError as exc:
            raise TransferFailed(f"the exchange directory is missing ({exc.strerror})") from exc
        try:
            info = os.stat(ref, dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                raise TransferFailed(f"input {ref} is not a regular file")
            if info.st_size > limit:
                raise TransferFailed(f"input {ref} has {info.st_size} bytes, over the {limit}-byte limit")
            try:
                os.rename(ref, target, src_dir_fd=folder)  # same tmpfs: no copy, whatever the size
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # another file system: copy instead
                    raise
                _copy_at(folder, ref, target, limit)
            return info.st_size
        except FileNotFoundError as exc:
            raise TransferFailed(f"input {ref} is missing from the exchange directory") from exc
        finally:
            os.close(folder)

    def end_inputs(self) -> None:
        """What the API side put there has been taken; the directory goes before user code runs."""
        scrub.empty_except(str(self.root), set())

    def begin_outputs(self) -> None:
        ensure_directory(self.root, self.uid)
        scrub.empty_except(str(self.root), set())  # whatever the cell left there
        (self.root / self.id).mkdir(mode=0o700)
        (self.root / self.id / "out").mkdir(mode=0o700)

    def export(self, source: Path, slot: str) -> str:
        target = self.root / self.id / "out" / slot
        try:
            os.rename(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise TransferFailed(f"output {source.name} could not be handed over ({exc.strerror})") from exc
            with open(source, "rb") as src, os.fdopen(new_file(target), "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        return f"out/{slot}"

    def slots(self) -> int:
        return self.max_outputs

    def keep(self) -> str:
        return self.id


class UrlExchange:
    """Lambda's: presigned S3 URLs, fetched and filled by the runner over HTTP(S)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        outputs, session = spec.get("outputs") or [], spec.get("session")
        resolve = spec.get("resolve") or {}
        if not isinstance(outputs, list) or not all(isinstance(u, str) for u in outputs):
            raise BadRequest("exchange.outputs must be a list of URLs")
        if session is not None and not isinstance(session, str):
            raise BadRequest("exchange.session must be a URL")
        if not isinstance(resolve, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in resolve.items()):
            raise BadRequest("exchange.resolve must map host names to addresses")
        for url in [*outputs, *([session] if session else [])]:
            _split(url)
        self.outputs, self.session, self.resolve = outputs, session, resolve

    def fetch(self, ref: str, target: Path, limit: int) -> int:
        response, connection = self._request("GET", ref, None, 0)
        try:
            if response.status != 200:
                raise TransferFailed(f"an input could not be fetched (HTTP {response.status})")
            declared = int(response.getheader("Content-Length") or -1)
            if declared > limit:
                raise TransferFailed(f"an input has {declared} bytes, over the {limit}-byte limit")
            size = 0
            with os.fdopen(new_file(target), "wb") as handle:
                while chunk := response.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise TransferFailed(f"an input is over the {limit}-byte limit")
                    handle.write(chunk)
            return size
        finally:
            connection.close()

    def begin_inputs(self) -> None:
        return None

    def end_inputs(self) -> None:
        return None

    def begin_outputs(self) -> None:
        return None

    def export(self, source: Path, slot: str) -> str:
        url = self.session if slot == SESSION_SLOT else self.outputs[int(slot)]
        if url is None:
            raise TransferFailed("no URL was given for the session state")
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(fd).st_size
            response, connection = self._request("PUT", url, handle, size)
            try:
                response.read()
                if response.status not in (200, 201, 204):
                    raise TransferFailed(f"output {slot} could not be stored (HTTP {response.status})")
            finally:
                connection.close()
        return f"out/{slot}"

    def slots(self) -> int:
        return len(self.outputs)

    def keep(self) -> None:
        return None

    def _request(self, method: str, url: str, body: Any,
                 size: int) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        scheme, host, port, target = _split(url)
        address = self.resolve.get(host, host)
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = _PinnedHTTPSConnection(host, address, port, timeout=HTTP_TIMEOUT_S)
        else:
            connection = http.client.HTTPConnection(address, port, timeout=HTTP_TIMEOUT_S)
        headers = {"Host": host if port in (80, 443) else f"{host}:{port}"}
        if method == "PUT":
            headers["Content-Length"] = str(size)
        try:
            connection.request(method, target, body=body, headers=headers, encode_chunked=False)
            return connection.getresponse(), connection
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise TransferFailed(f"the object store could not be reached ({type(exc).__name__})") from exc


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to ``host`` (certificate and SNI checked against it) at an address looked up elsewhere."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("exchange URLs must be http(s) URLs")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, parts.hostname, port, target


def _copy_at(folder: int, name: str, target: Path, limit: int) -> None:
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    with os.fdopen(source, "rb") as src, os.fdopen(new_file(target), "wb") as dst:
        copied = 0
        while chunk := src.read(CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise TransferFailed(f"input {name} is over the {limit}-byte limit")
            dst.write(chunk)
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=folder)


def from_request(spec: object, root: str | None, uid: int, max_outputs: int) -> Exchange | None:
    """The request's exchange (None: inline)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise BadRequest("exchange must be an object")
    if "dir" in spec:
        if root is None:
            raise BadRequest("exchange.dir is not available here (no SANDBOX_EXCHANGE_DIR)")
        if not isinstance(spec["dir"], str):
            raise BadRequest("exchange.dir must be a string")
        return DirectoryExchange(Path(root), spec["dir"], uid, max_outputs)
    return UrlExchange(spec)
