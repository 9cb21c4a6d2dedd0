"""A handler call on a thread of its own, so that the HTTP front end can do something while it runs:
send a long non-streamed turn's status and headers early and keep its connection alive, or answer
504 when an emulated buffered integration would have given up (the call goes on, as a Lambda
function goes on after API Gateway's timeout)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .edge import stream_sink


class HandlerCall:
    def __init__(self, handler: Callable[[dict[str, Any]], dict[str, Any]], event: dict[str, Any]) -> None:
        self.sink: list[Iterator[bytes]] = []
        self._response: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        token = stream_sink.set(self.sink)
        try:
            context = contextvars.copy_context()  # the handler sees this call's stream sink
        finally:
            stream_sink.reset(token)
        self._thread = threading.Thread(target=context.run, args=(self._run, handler, event), daemon=True,
                                        name="handler-call")

    def start(self) -> HandlerCall:
        self._thread.start()
        return self

    def _run(self, handler: Callable[[dict[str, Any]], dict[str, Any]], event: dict[str, Any]) -> None:
        try:
            self._response = handler(event)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the handler has returned (or raised)."""
        return self._done.wait(timeout_s)

    def response(self) -> dict[str, Any]:
        """The handler's response; what it raised is raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._response is not None
        return self._response
