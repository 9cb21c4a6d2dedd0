"""One resolver setup for every API function: observability, auth, and the central error mapping."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ..auth import Principal
from ..errors import ApiError, ValidationFailed
from ..services import Services, get_services
from .edge import error_response
from .errors import validation_detail

# The caller of the request being handled. A ContextVar, not the resolver's shared ``context``
# dict: the local front end serves requests on concurrent threads through one module-level
# resolver, and a shared dict would let one request see another's principal.
_caller: ContextVar[Principal | None] = ContextVar("caller", default=None)


def authenticate(app: APIGatewayRestResolver, next_middleware: Callable[[APIGatewayRestResolver], Response]) -> Response:
    """Middleware on every route: who is calling (401 if nobody valid), counted once against the
    workspace's rate limit (429), before the route parses anything."""
    principal = principal_of(app)
    services().limiter.check(principal.workspace, principal.rate_limit_per_minute)
    token = _caller.set(principal)
    try:
        return next_middleware(app)
    finally:
        _caller.reset(token)  # a warm Lambda's next request starts with no caller


def make_resolver(logger: Logger) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    app.use(middlewares=[authenticate])

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        if exc.status >= 500:
            logger.exception("request failed")
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error_response(ValidationFailed(validation_detail(list(exc.errors()), prefix=())))

    @app.not_found
    def _not_found(_: Exception) -> Response:
        return error_response(_NoRoute(f"No route for {app.current_event.http_method} {app.current_event.path}"))

    return app


class _NoRoute(ApiError):
    status = 404
    error_type = "invalid_request_error"


def workspace(app: APIGatewayRestResolver) -> str:
    """The workspace of the caller the ``authenticate`` middleware admitted for this request."""
    principal = _caller.get()
    if principal is None:
        raise RuntimeError("workspace() called outside a request admitted by the authenticate middleware")
    return principal.workspace


def principal_of(app: APIGatewayRestResolver) -> Principal:
    """From the API Gateway authorizer's context when one ran, else from the bearer key itself
    (the streaming function URL, and the local server, have no authorizer in front)."""
    authorizer = app.current_event.request_context.authorizer
    from_authorizer = authorizer.get("workspace") if authorizer else None
    if from_authorizer:
        limit = authorizer.get("rate_limit_per_minute")
        return Principal(str(from_authorizer), int(limit) if limit not in (None, "") else None)
    return services().keys.authenticate(app.current_event.get_header_value("authorization"))


def services() -> Services:
    return get_services()
