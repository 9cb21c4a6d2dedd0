"""The playground page (/, /playground, /playground/...): static files, outside the key authorizer.

Thin: the answers are built by ``static_site`` (shared with `make serve`); nothing here reads or
writes data, and every API call the page makes carries the key the user typed.
"""

from typing import Any

import static_site
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
STREAM_URL = static_site.stream_url_from_env()  # template.yaml: the conversations function URL
MODEL_PROVIDER = static_site.model_provider_from_env()


def _prefix(event: dict[str, Any]) -> str:
    """What precedes the resource path in the browser's URL: ``/prod`` on the execute-api domain,
    a base path on a custom domain, nothing on a custom domain mapped at its root."""
    path = event.get("path") or "/"
    public = (event.get("requestContext") or {}).get("path") or path
    prefix = public.rstrip("/") if path == "/" else (public[: -len(path)] if public.endswith(path) else "")
    # It becomes a Location header: only a plain path of this host ("/prod", "/base"), never a
    # scheme-relative "//elsewhere" (an open redirect) or anything with a backslash or a scheme.
    if prefix and (not prefix.startswith("/") or prefix.startswith("//") or "\\" in prefix or ":" in prefix):
        return ""
    return prefix


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    method = event.get("httpMethod") or "GET"
    path = event.get("path") or "/"
    result = static_site.answer(method, path, static_site.keys_required_from_env(), _prefix(event), STREAM_URL,
                                MODEL_PROVIDER) \
        or static_site.not_found(path)  # only the playground's routes lead here
    logger.info("playground", extra={"path": path, "status": result.status})
    return {"statusCode": result.status, "headers": result.headers,
            "body": "" if method == "HEAD" else result.body.decode("utf-8")}
