"""Files API: /v1/files... Thin: parse (multipart for uploads), call one FileService method, answer."""

import base64
import time
from email import policy
from email.parser import BytesParser
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.domain.files import FileSelection, upload_expiry
from agentsapi.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from agentsapi.http.edge import json_response, query_bool, query_choices, query_int, query_values
from agentsapi.http.headers import content_disposition
from agentsapi.http.resolver import json_body, make_resolver, services, workspace
from agentsapi.models.files import SAMPLE_TYPES, SOURCES, SignedUploadRequest
from agentsapi.payloads import DIRECT_BODY_MAX_BYTES, SIGNED_UPLOAD_ROUTE

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver(logger)

# Set in requestContext by the local front end only (a client cannot write requestContext, as
# it cannot write API Gateway's authorizer context): a large upload it already streamed to a
# staging file, and whether it follows an internal redirect to stream a download itself.
STAGED_UPLOAD = "stagedUpload"
INTERNAL_REDIRECT = "internalRedirect"
INTERNAL_REDIRECT_HEADER = "X-Accel-Redirect"


def _request_context() -> dict[str, Any]:
    return app.current_event.raw_event.get("requestContext") or {}


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8", "surrogateescape")


def _multipart() -> dict[str, Any]:
    """The form fields of a multipart/form-data body; the ``file`` field keeps name, type and bytes."""
    content_type = app.current_event.get_header_value("content-type") or ""
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType("upload with Content-Type multipart/form-data (fields: file, purpose)",
                                   param="Content-Type")
    body = _raw_body()
    if len(body) > DIRECT_BODY_MAX_BYTES:  # more than API Gateway + Lambda carry; locally, a front end without staging
        raise PayloadTooLarge(f"file: a {len(body)}-byte upload is over the {DIRECT_BODY_MAX_BYTES} bytes one request "
                              f"carries; upload larger files with {SIGNED_UPLOAD_ROUTE} (a signed upload)", param="file")
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
    staged = _request_context().get(STAGED_UPLOAD)
    if staged:
        expires_at = upload_expiry(staged.get("expiry"), staged.get("visibility"), time.time())
        record = services().files.adopt_staged(workspace(app), staged["token"], staged["filename"],
                                               staged.get("purpose"), staged.get("contentType"), expires_at)
    else:
        fields = _multipart()
        filename, mimetype, content = fields["file"]
        expires_at = upload_expiry(fields.get("expiry"), fields.get("visibility"), time.time())
        record = services().files.upload(workspace(app), filename, content, fields.get("purpose"), mimetype,
                                         expires_at=expires_at)
    metrics.add_metric(name="FilesUploaded", unit=MetricUnit.Count, value=1)
    return json_response(record.to_api())


@app.post("/v1/files/uploads")
@tracer.capture_method(capture_response=False)
def create_signed_upload() -> Response[Any]:
    request = json_body(app, SignedUploadRequest)
    return json_response(services().files.uploads.create(workspace(app), request.filename, request.purpose,
                                                         request.size))


@app.get("/v1/files")
@tracer.capture_method(capture_response=False)
def list_files() -> Response[Any]:
    query = app.current_event.query_string_parameters or {}
    multi = app.current_event.multi_value_query_string_parameters or {}
    page = query_int(query, "page", 0, 0, 1_000_000)
    page_size = query_int(query, "page_size", 100, 1, 1000)
    selection = FileSelection(purpose=query.get("purpose") or None, search=query.get("search") or None,
                              sources=query_choices(multi, "source", SOURCES),
                              sample_types=query_choices(multi, "sample_type", SAMPLE_TYPES),
                              mimetypes=query_values(multi, "mimetypes"))
    return json_response(services().files.list(workspace(app), page, page_size, selection,
                                               include_total=query_bool(query, "include_total", True)))


@app.get("/v1/files/<file_id>")
@tracer.capture_method(capture_response=False)
def retrieve_file(file_id: str) -> Response[Any]:
    return json_response(services().files.get(workspace(app), file_id))


@app.get("/v1/files/<file_id>/content")
@tracer.capture_method(capture_response=False)
def download_file(file_id: str) -> Response[Any]:
    download = services().files.download(workspace(app), file_id, bool(_request_context().get(INTERNAL_REDIRECT)))
    # The SDK accepts only application/octet-stream here (image/png is rejected).
    headers = {"Content-Disposition": content_disposition(download.record.filename)}
    if download.redirect is not None:  # the front end strips this header and streams the blob itself
        return Response(status_code=200, content_type="application/octet-stream", body="",
                        headers={**headers, INTERNAL_REDIRECT_HEADER: download.redirect})
    # The body is base64 already: the resolver's response validation would turn raw bytes into text.
    response: Response[Any] = Response(status_code=200, content_type="application/octet-stream",
                                       body=base64.b64encode(download.data or b"").decode("ascii"), headers=headers)
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


@app.get("/v1/usage")
@tracer.capture_method(capture_response=False)
def storage_usage() -> Response[Any]:
    """Our extension: what the caller's workspace holds against its storage quota."""
    quota = services().quota
    assert quota is not None
    return json_response(quota.usage(workspace(app)).to_api())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def uploads_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """S3 ObjectCreated under uploads/ (FileUploadsFunction): the signed upload becomes a file.
    Idempotent; a failure here is not lost, as a listing or a retrieve completes the upload too."""
    recorded = 0
    for record in event.get("Records") or []:
        key = (record.get("s3") or {}).get("object", {}).get("key", "")
        if services().files.uploads.object_created(key) is not None:
            recorded += 1
    if recorded:
        metrics.add_metric(name="FilesUploaded", unit=MetricUnit.Count, value=recorded)
    return {"recorded": recorded}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def recount_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Once a day (UsageRecountFunction): files past their expiry deleted (reads never show them
    meanwhile: they delete those they meet), then every workspace's storage counters set to what
    the bucket holds, so that session states the lifecycle rules expired stop counting."""
    from agentsapi.domain.housekeeping import expire_files, recount_usage

    current = services()
    assert current.quota is not None and current.storage is not None
    expired = expire_files(current.files, current.storage.blobs)
    recounted = recount_usage(current.quota, current.storage.blobs)
    metrics.add_metric(name="UsageRecounted", unit=MetricUnit.Count, value=recounted)
    return {"recounted": recounted, "expired_files": expired}
