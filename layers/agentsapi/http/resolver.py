"""One resolver setup for every API function: observability, auth, and the central error mapping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel

from ..auth import Principal
from ..errors import ApiError, MethodNotAllowed, UnsupportedMediaType, ValidationFailed
from ..services import Services, get_services
from .edge import error_response, parse_body, request_body_limit
from .errors import validation_detail


def authenticate(app: APIGatewayRestResolver, next_middleware: Callable[[APIGatewayRestResolver], Response]) -> Response:
    """Middleware on every route: who is calling (401 if nobody valid), counted once against the
    workspace's rate limit (429), before the route parses anything. The caller is kept in the
    request's context, which is per thread (PerThreadRestResolver) and cleared after each request."""
    principal = principal_of(app)
    services().limiter.check(principal.workspace, principal.rate_limit_per_minute)
    storage = services().storage
    if storage is not None and app.current_event.http_method in WRITING_METHODS:
        storage.check_room_to_write()  # reads and deletes run on the disk reserve; writes stop before it
    app.append_context(caller=principal)
    return next_middleware(app)


WRITING_METHODS = frozenset({"POST", "PUT", "PATCH"})


class PerThreadRestResolver(APIGatewayRestResolver):
    """powertools keeps the current event, the Lambda context and the route context on the class,
    which is right for Lambda (one request at a time per process). The local front end and the
    streaming function's web app call the same handler from concurrent threads, so here they
    live per thread: no request ever reads another's event, route or caller."""

    _state = threading.local()

    @property  # type: ignore[override]
    def current_event(self) -> Any:
        return self._state.event

    @current_event.setter
    def current_event(self, value: Any) -> None:
        self._state.event = value

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return getattr(self._state, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._state.lambda_context = value

    @property  # type: ignore[override]
    def context(self) -> dict[str, Any]:
        if not hasattr(self._state, "context"):
            self._state.context = {}
        return self._state.context  # type: ignore[no-any-return]

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._state.context = value

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        # The base class assigns the shared class attributes; the properties above shadow them.
        self._state.event = self._to_proxy_event(event)
        self._state.lambda_context = context
        return super().resolve(event, context)


def make_resolver(logger: Logger) -> APIGatewayRestResolver:
    app = PerThreadRestResolver(enable_validation=True)
    app.use(middlewares=[authenticate])

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        if exc.status >= 500:
            # The type and status only: a provider's error text can echo the prompt or tool output.
            logger.error("request failed", extra={"error_type": type(exc).__name__, "status": exc.status,
                                                  "param": exc.param})
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error_response(ValidationFailed(validation_detail(list(exc.errors()), prefix=())))

    @app.not_found
    def _not_found(_: Exception) -> Response:
        method, path = app.current_event.http_method, app.current_event.path
        allowed = allowed_methods(app, path)
        if allowed:
            return error_response(MethodNotAllowed(method, path, allowed))
        return error_response(_NoRoute(f"No route for {method} {path}"))

    return app


def allowed_methods(app: APIGatewayRestResolver, path: str) -> list[str]:
    """The methods the resolver's routes serve on ``path`` (none: the path itself is unknown).
    Powertools keeps its routes in these two lists; it offers no public way to ask."""
    # A static path wins over a pattern that also matches it (/v1/agents/pages is not an agent id).
    for routes in (app._static_routes, app._dynamic_routes):
        methods = {route.method for route in routes if route.rule.match(path)}
        if methods:
            return sorted(methods)
    return []


class _NoRoute(ApiError):
    status = 404
    error_type = "invalid_request_error"


def workspace(app: APIGatewayRestResolver) -> str:
    """The workspace of the caller the ``authenticate`` middleware admitted for this request."""
    principal = app.context.get("caller")
    if not isinstance(principal, Principal):
        raise RuntimeError("workspace() called outside a request admitted by the authenticate middleware")
    return principal.workspace


def principal_of(app: APIGatewayRestResolver) -> Principal:
    """From the API Gateway authorizer's context when one ran, else from the bearer key itself
    (the streaming function URL, and the local server, have no authorizer in front)."""
    authorizer = app.current_event.request_context.authorizer
    from_authorizer = authorizer.get("workspace") if authorizer else None
    if from_authorizer:
        limit = authorizer.get("rate_limit_per_minute")
        return Principal(str(from_authorizer), int(limit) if limit not in (None, "") else None,
                         authorizer.get("key_id") or None)
    return services().keys.authenticate(app.current_event.get_header_value("authorization"))


def services() -> Services:
    return get_services()


Model = TypeVar("Model", bound=BaseModel)


def json_body(app: APIGatewayRestResolver, model: type[Model]) -> Model:
    """The request's JSON body as ``model``, within the route's size and the nesting limit."""
    settings = services().settings
    event = app.current_event
    media_type = (event.get_header_value("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        # No Content-Type at all is taken as JSON (curl -d without -H, scripts); another one is not.
        raise UnsupportedMediaType(f"send the body as application/json, not {media_type}", param="Content-Type")
    return parse_body(model, event.decoded_body, request_body_limit(settings, event.path), settings.max_json_depth)
