"""The playground's static files and the HTTP answers for them, shared by the Lambda function
(``app.py`` beside this file) and ``make serve`` (``local/serve.py``), so both serve the same bytes
with the same headers.

Only files that were in ``static/`` when the module was imported can be served: a request path is
looked up in that list, never joined onto the file system, so no path can reach anything else.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

STATIC = Path(__file__).resolve().parent / "static"
BASE = "/playground"
CONFIG = "config.json"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
STREAM_URL_SETTING = "PLAYGROUND_STREAM_URL"


def csp(stream_origin: str | None = None) -> str:
    """The page runs only its own scripts and styles. Images may also be blob: URLs, because files
    are fetched with the API key and shown through URL.createObjectURL. Connections go to the page's
    own origin, and to the streaming endpoint's when turns stream from another one (in AWS, the
    function URL: API Gateway would buffer the stream). Model text and code output are never HTML;
    this policy is the second line if a bug ever made them so."""
    connect = "'self'" + (f" {stream_origin}" if stream_origin else "")
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
            # No script-building sink may take a string (the page has none; this keeps it so).
            "require-trusted-types-for 'script'; trusted-types 'none'")


CSP = csp()
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
FILES = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _answer(status: int, content_type: str, body: bytes, stream_url: str | None = None, **extra: str) -> Answer:
    headers = {**SECURITY_HEADERS, "Content-Type": content_type, "Content-Length": str(len(body)), **extra}
    if stream_url:
        headers["Content-Security-Policy"] = csp(origin_of(stream_url))
    return Answer(status, headers, body)


def _text(status: int, message: str, **extra: str) -> Answer:
    return _answer(status, "text/plain; charset=utf-8", message.encode(), **extra)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stream_url_from_env() -> str | None:
    """Where the page sends the turns it streams, if not to its own origin: in AWS, the
    conversations function URL (template.yaml), which streams where API Gateway buffers. A plain
    http(s) base URL; anything else stops the start with the reason, rather than a page whose
    streams the browser refuses."""
    raw = os.environ.get(STREAM_URL_SETTING, "").strip()
    if not raw:
        return None
    match = _BASE_URL.fullmatch(raw)
    if match is None:
        raise ValueError(f"{STREAM_URL_SETTING} must be a plain http(s) base URL such as "
                         f"https://abc.lambda-url.eu-west-1.on.aws/ (got {raw!r})")
    return f"{match['origin']}{(match['path'] or '').rstrip('/')}/"


# What may land in the CSP header: a scheme, an ASCII host name or IP literal (no wildcard), a
# numeric port, and a path of plain characters. Nothing that could end or widen a source list.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_BASE_URL = re.compile(rf"(?P<origin>https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?)"
                       r"(?P<path>/[A-Za-z0-9._~/-]*)?")


def not_found(path: str) -> Answer:
    return _text(404, f"no such page: {path}")


def keys_required_from_env() -> bool:
    """What the API functions do with AUTH_MODE (its default is keys): auto is open unless API_KEYS."""
    mode = os.environ.get("AUTH_MODE", "keys")
    return mode == "keys" or (mode == "auto" and bool(os.environ.get("API_KEYS", "").strip()))


def model_provider_from_env() -> str:
    """Which model answers (template.yaml passes the stack's ModelProvider), for the first-visit panel."""
    return os.environ.get("MODEL_PROVIDER", "offline")


def answer(method: str, path: str, keys_required: bool, prefix: str = "",
           stream_url: str | None = None, model_provider: str = "offline") -> Answer | None:
    """The answer to ``method path`` (path without the query), or None if it is not the playground's.

    ``prefix`` is whatever is in front of the site's root in the browser's URL (API Gateway's stage,
    ``/prod``), so that redirects land on the right page. ``stream_url``: see stream_url_from_env.
    """
    if path not in ("/", BASE) and not path.startswith(BASE + "/"):
        return None
    if method not in ("GET", "HEAD"):
        return _text(405, "the playground is static: GET only", Allow="GET, HEAD")
    if path in ("/", BASE):  # relative URLs in the page need the trailing slash
        return _text(302, "see /playground/", Location=f"{prefix}{BASE}/", **{"Cache-Control": "no-cache"})
    name = path[len(BASE) + 1:] or "index.html"
    if name == CONFIG:
        # What the page must know before it calls the API: whether to ask for a key, where turns
        # stream from (null: the page's own origin), and which model answers (offline, mistral,
        # openai: the first visit says so, and how to connect a real one).
        body = json.dumps({"keys_required": keys_required, "stream_url": stream_url,
                           "model_provider": model_provider}).encode()
        return _answer(200, "application/json", body, **{"Cache-Control": "no-store"})
    file = FILES.get(name)
    if file is None:
        return not_found(path)
    return _answer(200, CONTENT_TYPES[file.suffix], file.read_bytes(), stream_url, **{"Cache-Control": "no-cache"})
