"""The playground's Lambda function and static files: what API Gateway hands it (events/playground/),
what it answers, and the rules the page's code must keep (no HTML from strings, no inline script)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from local.apigw import _load
from local.serve import first_answer, playground

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "playground"
STATIC = FUNCTION / "static"
EVENTS = sorted((ROOT / "events" / "playground").glob("*.json"))
sys.path.insert(0, str(FUNCTION))  # the Lambda runtime puts the function's folder on the path
try:
    app = _load("playground_app", FUNCTION / "app.py")
finally:
    sys.path.remove(str(FUNCTION))  # other functions' modules are called app too


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from local.apigw import FakeContext

    return app.lambda_handler(event, FakeContext(function_name="playground"))


def event_named(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / "playground" / f"{name}.json").read_text())


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.stem)
def test_every_answer_carries_the_security_headers(path: Path) -> None:
    response = invoke(json.loads(path.read_text()))
    assert response["statusCode"] in (200, 302)
    headers = response["headers"]
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert csp["img-src"] == "'self' blob:"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["require-trusted-types-for"] == "'script'" and csp["trusted-types"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["root_redirect", "page_redirect"])
def test_the_root_and_the_bare_path_redirect_to_the_page_under_the_stage(name: str) -> None:
    response = invoke(event_named(name))
    assert response["statusCode"] == 302 and response["headers"]["Location"] == "/prod/playground/"


@pytest.mark.parametrize("public", ["//evil.example/", "/\\evil.example/", "https://evil.example/", "evil/"])
def test_the_redirect_never_leaves_the_host_whatever_the_request_context_says(public: str) -> None:
    """The stage prefix comes from requestContext.path; a custom domain or a crafted event must
    never turn the redirect into one to another host (found by the playground review)."""
    event = event_named("root_redirect")
    event["requestContext"]["path"] = public
    location = invoke(event)["headers"]["Location"]
    assert location == "/playground/", location


def test_the_page_and_its_modules_are_served_with_their_types() -> None:
    page = invoke(event_named("index"))
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert '<script type="module" src="app.js"></script>' in page["body"]
    module = invoke(event_named("module"))
    assert module["headers"]["Content-Type"].startswith("text/javascript")
    assert module["body"] == (STATIC / "app.js").read_text()


@pytest.mark.parametrize("env,required", [({}, True), ({"AUTH_MODE": "keys"}, True), ({"AUTH_MODE": "open"}, False),
                                          ({"AUTH_MODE": "auto"}, False), ({"AUTH_MODE": "auto", "API_KEYS": "k"}, True)])
def test_config_tells_the_page_whether_to_ask_for_a_key(env: dict[str, str], required: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_MODE", raising=False)
    monkeypatch.delenv("API_KEYS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    response = invoke(event_named("config"))
    assert json.loads(response["body"]) == {"keys_required": required, "stream_url": None, "model_provider": "offline"}
    assert response["headers"]["Cache-Control"] == "no-store"


FUNCTION_URL = "https://abcdefgh.lambda-url.eu-west-1.on.aws/"


def test_with_a_stream_url_the_page_is_told_it_and_may_connect_there_and_nowhere_else() -> None:
    """In AWS the turns stream from the function URL (API Gateway buffers): config.json names it and
    the page's CSP admits that one origin besides its own."""
    site = app.static_site
    config = site.answer("GET", "/playground/config.json", True, stream_url=FUNCTION_URL)
    assert json.loads(config.body) == {"keys_required": True, "stream_url": FUNCTION_URL, "model_provider": "offline"}
    page = site.answer("GET", "/playground/", True, stream_url=FUNCTION_URL)
    csp = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert csp["connect-src"] == "'self' https://abcdefgh.lambda-url.eu-west-1.on.aws"
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'none'"


@pytest.mark.parametrize("raw,expected", [("", None), (FUNCTION_URL, FUNCTION_URL),
                                          ("https://abcdefgh.lambda-url.eu-west-1.on.aws", FUNCTION_URL),
                                          ("http://localhost:8080/base", "http://localhost:8080/base/")])
def test_the_stream_url_setting_is_a_base_url(raw: str, expected: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_STREAM_URL", raw)
    assert app.static_site.stream_url_from_env() == expected


@pytest.mark.parametrize("raw", ["javascript:alert(1)", "ftp://example.com/", "https://x.example; script-src *",
                                 "https://x.example 'unsafe-inline'", "https://user:pw@x.example/",
                                 "https://x.example/?a=1", "https://x.example/#f", "//x.example/", "https://",
                                 # found by review: a wildcard source, a form feed splitting the list, a
                                 # host outside Latin-1 (the header was then dropped: a page with no CSP)
                                 "https://*/", "https://a.example\x0c*/", "https://例え.jp/", "https://a..b/",
                                 "https://x.example:99999999/"])
def test_a_stream_url_that_could_bend_the_policy_stops_the_start(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """It lands in the Content-Security-Policy header: nothing but a plain origin and path may."""
    monkeypatch.setenv("PLAYGROUND_STREAM_URL", raw)
    with pytest.raises(ValueError, match="PLAYGROUND_STREAM_URL must be a plain http"):
        app.static_site.stream_url_from_env()


@pytest.mark.parametrize("path", ["/playground/../template.yaml", "/playground/%2e%2e/app.py", "/playground/static_site.py",
                                  "/playground/static/app.js", "/playground/app.py", "/playground/.", "/playground/nope.js"])
def test_nothing_but_the_static_files_can_be_reached(path: str) -> None:
    event = event_named("module")
    event["path"] = path
    assert invoke(event)["statusCode"] == 404


def test_only_get_is_answered() -> None:
    event = event_named("index")
    event["httpMethod"] = "POST"
    response = invoke(event)
    assert response["statusCode"] == 405 and response["headers"]["Allow"] == "GET, HEAD"


def test_make_serve_answers_the_playground_first_and_leaves_other_paths_to_the_next_route() -> None:
    other = ("GET", "/_blobs/x", "")
    route = first_answer(playground(keys_required=True), None, lambda *request: (200, {}, [b"blob"]) if request == other
                         else None)
    status, headers, body = route("GET", "/playground/config.json", "")
    assert status == 200 and json.loads(b"".join(body)) == {"keys_required": True, "stream_url": None, "model_provider": "offline"}
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert route(*other)[2] == [b"blob"]
    assert route("GET", "/v1/agents", "") is None  # the API's own routes


# -- the rules the front end keeps ------------------------------------------------------------------

SCRIPTS = sorted(STATIC.glob("*.js"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_script_turns_strings_into_html_or_code(path: Path) -> None:
    """Model text and code output are untrusted: they become text nodes, never markup or code."""
    source = path.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "createContextualFragment", "DOMParser", "srcdoc"):
        assert sink not in source, f"{path.name} uses {sink}"


def test_the_page_has_no_inline_script_style_or_handler_and_loads_nothing_from_elsewhere() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    for path in STATIC.iterdir():
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", path.read_text()), f"{path.name} loads from elsewhere"
