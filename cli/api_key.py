"""Create, list and revoke API keys of a deployed stack.

    python -m cli.api_key create --stack agents-api --workspace team-a [--name ci] [--rate-limit 120]
    python -m cli.api_key list   --stack agents-api
    python -m cli.api_key revoke --stack agents-api key_0123456789abcdef

(`make api-key STACK=... WORKSPACE=...` runs the first.) The table is found from the stack's
``TableName`` output, or given with ``--table``. The key is printed once and only its SHA-256 is
stored; revoked keys stop working within a minute (the authorizer's cache). Uses the usual AWS
credential chain (AWS_PROFILE, AWS_REGION, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers"))

import boto3  # noqa: E402

from agentsapi.adapters.dynamodb_keys import DynamoDBKeyStore  # noqa: E402
from agentsapi.auth import ApiKeyService  # noqa: E402
from agentsapi.errors import ApiError  # noqa: E402


def table_of_stack(cloudformation: Any, stack: str) -> str:
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == "TableName":
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack} has no TableName output; pass --table")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m cli.api_key", description="Manage API keys of a deployed stack.")
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_mutually_exclusive_group(required=True)
    group.add_argument("--stack", help="CloudFormation stack name (its TableName output is used)")
    group.add_argument("--table", help="DynamoDB table name")
    where.add_argument("--region", help="AWS region (default: your AWS configuration)")
    commands = top.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", parents=[where], help="create a key and print it once")
    create.add_argument("--workspace", required=True, help="the workspace the key opens (its data is shared by its keys)")
    create.add_argument("--name", default="", help="a label, e.g. who holds the key")
    create.add_argument("--rate-limit", type=int, help="requests per minute (default: the stack's RateLimitPerMinute)")
    commands.add_parser("list", parents=[where], help="list keys (ids, workspaces, hints; never the keys)")
    revoke = commands.add_parser("revoke", parents=[where], help="revoke a key by its id")
    revoke.add_argument("key_id")
    return top


def main(argv: list[str] | None = None, session: Any = None) -> int:
    args = parser().parse_args(argv)
    session = session or boto3.session.Session(region_name=args.region)
    table = args.table or table_of_stack(session.client("cloudformation"), args.stack)
    service = ApiKeyService(DynamoDBKeyStore(session.client("dynamodb"), table))
    try:
        if args.command == "create":
            issued = service.create(args.workspace, args.name, args.rate_limit)
            print(json.dumps({"api_key": issued.key, **issued.record.model_dump()}, indent=2))
            print("Store the key now: it is not kept and cannot be shown again.", file=sys.stderr)
        elif args.command == "list":
            print(json.dumps([record.model_dump() for record in service.list()], indent=2))
        else:
            print(json.dumps(service.revoke(args.key_id).model_dump(), indent=2))
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
