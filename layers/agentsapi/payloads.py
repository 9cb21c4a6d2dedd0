"""What one request or response can carry through API Gateway (REST) and a synchronous Lambda invoke.

Lambda refuses a synchronous invocation whose payload — the whole API Gateway event as JSON —
is 6,291,456 bytes or more ("Request must be smaller than 6291456 bytes for the InvokeFunction
operation"); a response may be 100 bytes larger. API Gateway hands a binary body (an upload's
multipart/form-data) to Lambda base64-encoded, and a binary response comes back the same way,
so 4 bytes of payload carry 3 of the body. API Gateway's own 10 MB limit is never reached first.

The event around the body (headers twice, as ``headers`` and ``multiValueHeaders``, the request
context with the authorizer's workspace, the identity block) is a few KB for the SDK's requests;
16 KiB is kept for it so long user agents, forwarding headers and trace ids still fit.
tests/integration/test_file_sizes.py builds the SDK's own request for the largest file and checks
that its event fits, and that the handler refuses the next size up.
"""

from __future__ import annotations

LAMBDA_REQUEST_BYTES = 6_291_456
LAMBDA_RESPONSE_BYTES = 6_291_556
EVENT_ENVELOPE_BYTES = 16 * 1024
RESPONSE_ENVELOPE_BYTES = 4 * 1024
# The SDK's multipart framing around a file: boundaries, the part headers with a file name of up
# to 255 bytes, and the ``purpose`` field (measured: under 700 bytes for the longest name).
SDK_MULTIPART_FRAMING_BYTES = 1024


def base64_capacity(payload_bytes: int) -> int:
    """The most raw bytes whose base64 text fits in ``payload_bytes``."""
    return payload_bytes // 4 * 3


# The largest multipart body a direct upload may have in AWS: 4,706,304 bytes.
DIRECT_BODY_MAX_BYTES = base64_capacity(LAMBDA_REQUEST_BYTES - EVENT_ENVELOPE_BYTES)
# The largest file the SDK's ``files.upload`` carries through API Gateway: 4,705,280 bytes (4.49 MiB).
DIRECT_UPLOAD_MAX_BYTES = DIRECT_BODY_MAX_BYTES - SDK_MULTIPART_FRAMING_BYTES
# The largest file ``GET /v1/files/{id}/content`` returns through API Gateway: 4,715,595 bytes.
DIRECT_DOWNLOAD_MAX_BYTES = base64_capacity(LAMBDA_RESPONSE_BYTES - RESPONSE_ENVELOPE_BYTES)

SIGNED_UPLOAD_ROUTE = "POST /v1/files/uploads"
SIGNED_URL_ROUTE = "GET /v1/files/{file_id}/url"
