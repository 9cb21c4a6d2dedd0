"""The API side of the Lambda sandbox's exchange: presigned S3 URLs for exactly one execution.

The sandbox function has no data permission and no network but an S3 gateway endpoint whose
policy admits only ``sandbox/`` of the project bucket (template.yaml). So, per execution:

- each input (a file given to the conversation, the session state) is copied server-side to
  ``sandbox/<id>/in/<n>`` and handed over as a presigned GET;
- the outputs get presigned PUTs for ``sandbox/<id>/out/0..9`` and ``sandbox/<id>/out/session``;
- every URL expires soon after the execution's deadline;
- ``resolve`` carries the bucket host's addresses, looked up here: the sandbox's VPC has no DNS,
  and user code, which cannot open an AF_INET socket at all, gets no resolver either.

After the invoke the inputs go; each output is copied to ``sandbox/<id>/kept/``, which no URL
names, and measured there, until the turn adopts it (a server-side copy under the file's own
key) and discards the rest. A lifecycle
rule on ``sandbox/`` removes whatever a crash left behind.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from ..blobs import exchange_key
from ..sandbox.exchange import InputMissing, check_inputs_size
from ..sandbox.port import OUTPUT_REF, ExecutionRequest, ExecutionResult

OUTPUT_SLOTS = 10  # the runner returns at most this many files (SANDBOX_MAX_RETURNED_FILES)


class S3Exchange:
    def __init__(self, blobs: Any, presigner: Any, ttl_s: int, max_input_bytes: int, resolve: bool = True) -> None:
        self.blobs, self.presigner, self.ttl_s = blobs, presigner, ttl_s
        self.max_input_bytes, self.resolve = max_input_bytes, resolve
        self.id = uuid.uuid4().hex

    def send(self, request: ExecutionRequest, event: dict[str, object]) -> dict[str, object]:
        check_inputs_size(request, self.max_input_bytes)
        files: list[dict[str, str]] = []
        for index, item in enumerate(request.files):
            if item.key is None:
                files.append({"name": item.name, "content_b64": item.content_b64})
                continue
            files.append({"name": item.name, "ref": self._input(item.key, f"in/{index}")})
        if files:
            event["files"] = files
        if request.carry_session and request.session_key:
            event["session"] = {"state_ref": self._input(request.session_key, "in/session")}
        outputs = [self._url("put_object", exchange_key(self.id, f"out/{n}")) for n in range(OUTPUT_SLOTS)]
        spec: dict[str, object] = {"outputs": outputs, "session": self._url("put_object", exchange_key(self.id, "out/session"))}
        if self.resolve:
            spec["resolve"] = _addresses(outputs[0])
        event["exchange"] = spec
        return event

    def receive(self, result: ExecutionResult) -> None:
        """Each output's ``key`` and size, from what is really in the bucket. An output is first
        copied to ``kept/``, which no URL names, and measured there: the PUT URLs stay valid a
        while after the execution, so what the turn adopts must not be what they can still
        replace. An output without a ref the runner makes is dropped with a note."""
        result.exchange_prefix = exchange_key(self.id, "")
        kept = []
        for produced in result.files:
            size = self._keep(produced.ref)
            if size is None:
                result.notes.append(f"file {produced.name!r} did not reach the bucket")
                continue
            produced.key, produced.size, produced.content_b64 = self._kept(produced.ref), size, ""
            kept.append(produced)
        result.files = kept
        session = result.session
        if session is not None:
            size = self._keep(session.ref) if session.ref == "out/session" else None
            if size is None:
                result.session = None
                result.notes.append("the session state did not reach the bucket; it was not kept")
            else:
                session.key, session.bytes, session.state_b64 = self._kept(session.ref), size, ""

    def _keep(self, ref: str | None) -> int | None:
        """Copy ``out/…`` to ``kept/…`` (server-side) and drop the original; the copy's size."""
        if ref is None or not OUTPUT_REF.fullmatch(ref):
            return None
        source = exchange_key(self.id, ref)
        if not self.blobs.copy(source, self._kept(ref)):
            return None
        self.blobs.delete(source)
        return self.blobs.size(self._kept(ref))

    def _kept(self, ref: str | None) -> str:
        return exchange_key(self.id, "kept/" + (ref or "").removeprefix("out/"))

    def close(self) -> None:
        self.blobs.delete_prefix(exchange_key(self.id, "in/"))

    def _input(self, key: str, ref: str) -> str:
        target = exchange_key(self.id, ref)
        if not self.blobs.copy(key, target):
            raise InputMissing(f"{key} is no longer stored")
        return self._url("get_object", target)

    def _url(self, operation: str, key: str) -> str:
        return str(self.presigner.generate_presigned_url(operation, Params={"Bucket": self.blobs.bucket, "Key": key},
                                                         ExpiresIn=self.ttl_s))


def _addresses(url: str) -> dict[str, str]:
    """The bucket host's address, looked up on this side (nothing to look up for an IP literal)."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return {}
    except ValueError:
        pass
    try:
        return {host: socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)[0][4][0]}
    except OSError:
        return {}
