"""One resolver setup for every API function: observability, auth, and the central error mapping."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ..errors import ApiError, ValidationFailed
from ..services import Services, get_services
from .edge import error_response
from .errors import validation_detail


def make_resolver(logger: Logger) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

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
    """The caller's workspace: from an authorizer if one ran, else from the bearer key."""
    authorizer = app.current_event.request_context.authorizer
    from_authorizer = authorizer.get("workspace") if authorizer else None
    if from_authorizer:
        return str(from_authorizer)
    return services().keys.authenticate(app.current_event.get_header_value("authorization"))


def services() -> Services:
    return get_services()
