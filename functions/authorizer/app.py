"""API Gateway TOKEN authorizer: ``Authorization: Bearer <key>`` -> the key's workspace.

The key is hashed and looked up in the table (``agentsapi.auth``); the handlers receive the
workspace and the key's rate limit in ``requestContext.authorizer``. The policy allows every
route of the stage, because API Gateway caches it per token for all routes (ReauthorizeEvery in
template.yaml), so a narrower policy would deny the next route from the cache. Unknown and
revoked keys raise "Unauthorized", which API Gateway answers with a 401 (shaped as an API error
by the stack's gateway responses). The token is never logged.
"""

from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.adapters.dynamodb_keys import DynamoDBKeyStore
from agentsapi.auth import Authenticator
from agentsapi.errors import Unauthorized
from agentsapi.settings import get_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@lru_cache(maxsize=1)
def authenticator() -> Authenticator:
    """Only the key check: the authorizer imports and builds none of the API's other services."""
    settings = get_settings()
    return Authenticator.from_settings(settings, DynamoDBKeyStore(boto3.client("dynamodb"), settings.table_name))


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
@event_source(data_class=APIGatewayAuthorizerTokenEvent)
def lambda_handler(event: APIGatewayAuthorizerTokenEvent, context: LambdaContext) -> dict[str, Any]:
    try:
        principal = authenticator().authenticate(event.authorization_token)
    except Unauthorized as exc:
        logger.info("key refused", extra={"reason": exc.message})
        metrics.add_metric(name="AuthRefused", unit=MetricUnit.Count, value=1)
        raise Exception("Unauthorized") from None  # noqa: TRY002 - the exact text API Gateway maps to 401
    arn = event.parsed_arn
    context_values: dict[str, Any] = {"workspace": principal.workspace}
    if principal.key_id:
        context_values["key_id"] = principal.key_id
    if principal.rate_limit_per_minute is not None:
        context_values["rate_limit_per_minute"] = principal.rate_limit_per_minute
    policy = APIGatewayAuthorizerResponse(principal_id=principal.workspace, region=arn.region,
                                          aws_account_id=arn.aws_account_id, api_id=arn.api_id, stage=arn.stage,
                                          context=context_values, partition=arn.partition)
    policy.allow_all_routes()
    return policy.asdict()
