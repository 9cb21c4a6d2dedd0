"""Batch worker: SQS messages (one per batch request), their dead letters, and JSONL drops in S3.

Each message runs one conversation with the same runtime as the API. Partial batch responses:
a failing request never fails its neighbours; a redelivered one never runs twice (the request
is claimed with a conditional write); a poisoned one reaches the dead-letter queue after a
bounded number of tries and is counted as failed with the reason.
"""

import json
import urllib.parse
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentsapi.domain.batch import RequestInProgress
from agentsapi.services import get_services

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def run_request(record: SQSRecord) -> None:
    message = json.loads(record.body)
    receives = int(record.attributes.approximate_receive_count or 1)
    get_services().batch.process(message["ws"], message["job_id"], int(message["index"]), receives)
    metrics.add_metric(name="BatchRequestsProcessed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=run_request, processor=processor, context=context)


@logger.inject_lambda_context
def dlq_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Messages that failed every try: count their requests as failed, saying why."""
    kept = []
    for raw in event.get("Records", []):
        record = SQSRecord(raw)
        message = json.loads(record.body)
        receives = record.attributes.approximate_receive_count
        try:
            get_services().batch.fail_poisoned(message["ws"], message["job_id"], int(message["index"]),
                                               f"failed {receives} times; moved to the dead-letter queue")
        except RequestInProgress:
            kept.append({"itemIdentifier": record.message_id})  # retried once its claim's lease ends
    return {"batchItemFailures": kept}


@logger.inject_lambda_context
def inbox_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A JSONL file dropped at batch-inbox/<workspace>/<agent|model>/<id or name>/<file>.jsonl starts a job."""
    started = []
    for record in event.get("Records", []):
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        job = get_services().batch.create_from_inbox(record["s3"]["bucket"]["name"], key)
        if job:
            started.append(job["id"])
    return {"jobs": started}
