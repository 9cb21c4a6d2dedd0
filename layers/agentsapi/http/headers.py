"""Response header values built from stored data, safe whatever that data holds."""

from __future__ import annotations

from urllib.parse import quote

# RFC 5987 attr-char minus the alphanumerics (quote keeps those): what may stay unencoded in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII ``filename`` fallback (no quotes, backslashes or control characters, so
    nothing can end the header or the quoted string) and the exact name as ``filename*=UTF-8''...``.
    Any stored name downloads: CR/LF cannot inject a header, and non-Latin-1 names cannot fail."""
    filename = filename or "download"
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename).strip() or "download"
    encoded = quote(filename.encode("utf-8", "replace"), safe=_ATTR_CHARS)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
