"""moto in-process, with the table created from template.yaml's own definition."""

from __future__ import annotations

import copy
import functools
import os
import threading
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
_MOTO_LOCK = threading.RLock()


def serialize_moto() -> None:
    """One DynamoDB call at a time through moto. Its in-process backend is not thread-safe (a
    transaction deep-copies the table while another thread writes it), and the local front end
    serves requests on threads; real DynamoDB is concurrent and atomic, so this only makes the
    emulator behave, it hides nothing our code relies on. Idempotent."""
    from moto.core.botocore_stubber import BotocoreStubber

    if getattr(BotocoreStubber.process_request, "serialized", False):
        return
    unlocked = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        if "dynamodb." not in str(getattr(request, "url", "")):
            return unlocked(self, request)  # SQS long polls wait inside moto: never under the lock
        with _MOTO_LOCK:
            return unlocked(self, request)

    process_request.serialized = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that accepts CloudFormation's short-form tags (!Ref, !Sub...)."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


def load_template(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """template.yaml as data: a copy of what was parsed once per text (parsing it with PyYAML
    takes about 0.3 s, and every test on moto creates the table from it)."""
    return copy.deepcopy(_parsed(path.read_text()))


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> dict[str, Any]:
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def table_arguments(table_name: str) -> dict[str, Any]:
    """CreateTable arguments taken from the Table resource in template.yaml."""
    properties = load_template()["Resources"]["Table"]["Properties"]
    keep = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
    return {"TableName": table_name, **{k: properties[k] for k in keep if k in properties}}


def fake_credentials() -> None:
    """moto needs credentials to exist; these never reach AWS."""
    serialize_moto()  # every local or test use of moto starts here
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[key] = value


def create_table(table_name: str) -> None:
    client = boto3.client("dynamodb")
    client.create_table(**table_arguments(table_name))


def create_bucket(bucket_name: str) -> None:
    boto3.client("s3").create_bucket(Bucket=bucket_name)


def create_queues(name: str, max_receives: int = 5) -> tuple[str, str]:
    """The batch queue and its dead-letter queue, as template.yaml declares them."""
    import json

    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
    })["QueueUrl"]
    return url, dlq_url
