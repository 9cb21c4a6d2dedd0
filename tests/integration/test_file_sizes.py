"""The figures in agentsapi/payloads.py, checked with the SDK's own requests and the real handler:
the largest file the SDK's files.upload carries through API Gateway + Lambda fits one event and is
stored; one byte more of body is refused with a 413 naming the signed upload; downloads alike."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mistralai.client import Mistral

from agentsapi.payloads import (
    DIRECT_BODY_MAX_BYTES,
    DIRECT_DOWNLOAD_MAX_BYTES,
    DIRECT_UPLOAD_MAX_BYTES,
    EVENT_ENVELOPE_BYTES,
    LAMBDA_REQUEST_BYTES,
    LAMBDA_RESPONSE_BYTES,
)
from local.apigw import invoke, make_event

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "files" / "upload_file.json"
LONGEST_NAME = "n" * 251 + ".csv"  # 255 bytes: the longest name a file may have


def sdk_upload_request(size: int) -> httpx.Request:
    """The exact request the official SDK sends for a file of ``size`` bytes (never sent anywhere)."""
    captured: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        captured.append(request)
        return httpx.Response(500)

    client = Mistral(api_key="k", server_url="http://api.invalid",
                     client=httpx.Client(transport=httpx.MockTransport(answer)))
    with pytest.raises(Exception):  # noqa: B017,PT011 - only the request matters
        client.files.upload(file={"file_name": LONGEST_NAME, "content": b"x" * size}, purpose="code_interpreter")
    return captured[0]


def api_gateway_event(request: httpx.Request) -> dict[str, Any]:
    """What API Gateway hands the files function for it: the sample event, with this body and type."""
    event = json.loads(SAMPLE.read_text())
    event["headers"]["content-type"] = request.headers["content-type"]
    event["multiValueHeaders"]["content-type"] = [request.headers["content-type"]]
    event["body"] = base64.b64encode(request.content).decode()
    event["requestContext"].pop("authorizer")  # the test's own bearer key names the workspace
    event["headers"]["authorization"] = event["multiValueHeaders"]["authorization"][0] = "Bearer test-key"
    return event


def test_the_largest_sdk_upload_fits_one_lambda_event_and_is_stored(api: Any) -> None:
    request = sdk_upload_request(DIRECT_UPLOAD_MAX_BYTES)
    assert len(request.content) <= DIRECT_BODY_MAX_BYTES
    event = api_gateway_event(request)
    envelope = len(json.dumps({**event, "body": ""}))
    assert envelope * 4 < EVENT_ENVELOPE_BYTES  # the budget for headers and context is generous
    assert len(event["body"]) + EVENT_ENVELOPE_BYTES <= LAMBDA_REQUEST_BYTES
    response = invoke("files", event)
    assert response["statusCode"] == 200, response["body"][:300]
    assert json.loads(response["body"])["bytes"] == DIRECT_UPLOAD_MAX_BYTES


def test_a_larger_body_is_refused_naming_the_signed_upload(api: Any) -> None:
    request = sdk_upload_request(DIRECT_UPLOAD_MAX_BYTES + 1024)
    assert len(request.content) > DIRECT_BODY_MAX_BYTES
    response = invoke("files", api_gateway_event(request))
    error = json.loads(response["body"])
    assert response["statusCode"] == 413 and error["param"] == "file"
    assert "POST /v1/files/uploads" in error["message"]
    assert api("GET", "/v1/files")[1]["data"] == []


def test_downloads_up_to_one_response_and_a_clear_error_beyond(api: Any, services: Any) -> None:
    ws = services.keys.authenticate("Bearer test-key").workspace
    fits = services.files.upload(ws, "fits.bin", b"y" * DIRECT_DOWNLOAD_MAX_BYTES)
    over = services.files.upload(ws, "over.bin", b"z" * (DIRECT_DOWNLOAD_MAX_BYTES + 1))
    response = invoke("files", make_event("GET", f"/v1/files/{fits.id}/content", {"authorization": "Bearer test-key"}))
    assert response["statusCode"] == 200 and len(json.dumps(response)) <= LAMBDA_RESPONSE_BYTES
    assert len(base64.b64decode(response["body"])) == DIRECT_DOWNLOAD_MAX_BYTES
    code, error, _ = api("GET", f"/v1/files/{over.id}/content")
    assert code == 400 and error["param"] == "file_id" and "/v1/files/{file_id}/url" in error["message"]
