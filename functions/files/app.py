"""Files API: /v1/files... Thin: parse (multipart for uploads), call one FileService method, answer."""

import base64
from email import policy
from email.parser import BytesParser
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.errors import InvalidRequest, PayloadTooLarge
from agentsapi.http.edge import MULTIPART_OVERHEAD_BYTES, json_response, query_int
from agentsapi.http.headers import content_disposition
from agentsapi.http.resolver import make_resolver, services, workspace

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver(logger)


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8", "surrogateescape")


def _multipart() -> dict[str, Any]:
    """The form fields of a multipart/form-data body; the ``file`` field keeps name, type and bytes."""
    content_type = app.current_event.get_header_value("content-type") or ""
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("upload with Content-Type multipart/form-data (fields: file, purpose)", param="file")
    body = _raw_body()
    limit = services().files.max_bytes + MULTIPART_OVERHEAD_BYTES
    if len(body) > limit:
        raise PayloadTooLarge(f"file: the upload is over the {services().files.max_bytes}-byte limit", param="file")
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            fields["file"] = (part.get_filename() or "", part.get_content_type(), part.get_payload(decode=True) or b"")
        elif name:
            fields[name] = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if "file" not in fields:
        raise InvalidRequest("file: the multipart body has no 'file' field", param="file")
    return fields


@app.post("/v1/files")
@tracer.capture_method(capture_response=False)
def upload_file() -> Response[Any]:
    fields = _multipart()
    filename, mimetype, content = fields["file"]
    record = services().files.upload(workspace(app), filename, content, fields.get("purpose"), mimetype)
    metrics.add_metric(name="FilesUploaded", unit=MetricUnit.Count, value=1)
    return json_response(record.to_api())


@app.get("/v1/files")
@tracer.capture_method(capture_response=False)
def list_files() -> Response[Any]:
    query = app.current_event.query_string_parameters or {}
    page = query_int(query, "page", 0, 0, 1_000_000)
    page_size = query_int(query, "page_size", 100, 1, 1000)
    return json_response(services().files.list(workspace(app), page, page_size, query.get("purpose") or None))


@app.get("/v1/files/<file_id>")
@tracer.capture_method(capture_response=False)
def retrieve_file(file_id: str) -> Response[Any]:
    return json_response(services().files.get(workspace(app), file_id))


@app.get("/v1/files/<file_id>/content")
@tracer.capture_method(capture_response=False)
def download_file(file_id: str) -> Response[bytes]:
    record, data = services().files.content(workspace(app), file_id)
    # The SDK accepts only application/octet-stream here (image/png is rejected). The body is
    # base64 already: the resolver's response validation would turn raw bytes into text.
    response: Response[bytes] = Response(status_code=200, content_type="application/octet-stream",
                                         body=base64.b64encode(data).decode("ascii"),
                                         headers={"Content-Disposition": content_disposition(record.filename)})
    response.base64_encoded = True
    return response


@app.get("/v1/files/<file_id>/url")
@tracer.capture_method(capture_response=False)
def signed_url(file_id: str) -> Response[Any]:
    expiry = query_int(app.current_event.query_string_parameters, "expiry", 24, 1, 168)
    return json_response(services().files.signed_url(workspace(app), file_id, expiry))


@app.delete("/v1/files/<file_id>")
@tracer.capture_method(capture_response=False)
def delete_file(file_id: str) -> Response[Any]:
    return json_response(services().files.delete(workspace(app), file_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
