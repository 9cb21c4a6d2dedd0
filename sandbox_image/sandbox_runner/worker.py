"""The local stand-in for a warm Lambda container: one long-lived process, JSON lines in and out.

Started by the API side's local invoker inside bubblewrap. Line 1 on stdout is a hello with the
isolation report; then each request line on stdin gets exactly one response line. Requests are
the same events the Lambda handler receives, answered by the same ``handle``. A request with
``"live": true`` also gets, before its response, a line ``{"live": {"stream", "text"}}`` for each
line the cell prints, as it prints it.
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import handler


def main() -> None:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    # Nothing else in this process may write to the protocol stream.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    started = time.monotonic()
    try:
        runner = handler.get_runner()
        hello = {"ready": True, "startup_ms": round((time.monotonic() - started) * 1000, 1),
                 "isolation": runner.isolation(), "preloaded": runner.zygote_info.get("preloaded", [])}
    except Exception as exc:  # noqa: BLE001 - report why, the invoker decides
        hello = {"ready": False, "error": f"{type(exc).__name__}: {exc}"}
    out.write(json.dumps(hello) + "\n")
    if not hello["ready"]:
        return
    for line in sys.stdin:
        try:
            event = json.loads(line)
        except ValueError:
            response = {"status": "bad_request", "message": "the request line is not JSON"}
        else:
            def live(stream: str, text: str) -> None:
                out.write(json.dumps({"live": {"stream": stream, "text": text}}) + "\n")

            wants_live = isinstance(event, dict) and event.get("live") is True
            response = handler.handle(event, None, on_output=live if wants_live else None)
        if handler._exit_after_response:
            response["worker_reset"] = True  # so the invoker never hands this worker to anyone else
        out.write(json.dumps(response) + "\n")
        if handler._exit_after_response:
            return  # the invoker restarts a fresh worker
        handler.get_runner().heal()  # a tampered zygote is replaced now, off the next caller's time


if __name__ == "__main__":
    main()
