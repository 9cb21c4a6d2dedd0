"""The API side of the Lambda sandbox's exchange: presigned S3 URLs for exactly one execution.

The sandbox function has no data permission and no network but an S3 gateway endpoint whose
policy admits only ``sandbox/`` of the project bucket (template.yaml). So, per execution:

- each input (a file given to the conversation, the session state) is copied server-side to
  ``sandbox/<id>/in/<n>`` and handed over as a presigned GET;
- the outputs get presigned PUTs for ``sandbox/<id>/out/0..9`` and ``sandbox/<id>/out/session``;
- every URL expires soon after the execution's deadline;
- ``resolve`` carries the bucket host's addresses, looked up here: the sandbox's VPC has no DNS,
  and user code, which cannot open an AF_INET socket at all, gets no resolver either.

After the invoke the inputs go; the outputs stay where the runner put them until the turn
adopts them (one server-side copy each, under the file's or the session's own key) and discards
the rest. Their PUT URLs are still valid a while after the execution, so nothing measured here
is trusted for what is kept: a file is measured again at its own key, which no URL names
(FileService.adopt_blob). A lifecycle rule on ``sandbox/`` removes whatever a crash left behind.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from ..blobs import exchange_key
from ..sandbox.exchange import InputMissing, OverRoom, adopt_outputs, check_inputs_size, refer_inputs
from ..sandbox.port import ExecutionRequest, ExecutionResult

OUTPUT_SLOTS = 10  # the runner returns at most this many files (SANDBOX_MAX_RETURNED_FILES)


class S3Exchange:
    def __init__(self, blobs: Any, presigner: Any, ttl_s: int, max_input_bytes: int, resolve: bool = True) -> None:
        self.blobs, self.presigner, self.ttl_s = blobs, presigner, ttl_s
        self.max_input_bytes, self.resolve = max_input_bytes, resolve
        self.id = uuid.uuid4().hex

    def send(self, request: ExecutionRequest, event: dict[str, object]) -> dict[str, object]:
        check_inputs_size(request, self.max_input_bytes)
        refer_inputs(request, event, lambda key, slot: self._input(key, f"in/{slot}"))
        outputs = [self._url("put_object", exchange_key(self.id, f"out/{n}")) for n in range(OUTPUT_SLOTS)]
        spec: dict[str, object] = {"outputs": outputs, "session": self._url("put_object", exchange_key(self.id, "out/session"))}
        if self.resolve:
            spec["resolve"] = _addresses(outputs[0])
        event["exchange"] = spec
        return event

    def receive(self, result: ExecutionResult, room: int | None = None) -> None:
        """Each output's ``key`` and size, from what is really in the bucket (a HEAD; no copy)."""
        adopt_outputs(result, exchange_key(self.id, ""), self._measure, room)

    def _measure(self, ref: str, room: int | None) -> tuple[str, int] | None:
        """The key and size of ``out/…`` (a ref adopt_outputs checked), or None if nothing reached
        the bucket; OverRoom if it is larger than the workspace may still store."""
        key = exchange_key(self.id, ref)
        size = self.blobs.size(key)
        if size is not None and room is not None and size > room:
            raise OverRoom(key)
        return None if size is None else (key, size)

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
