"""Expand template.yaml with the SAM translator (what `sam deploy` does) and check the result.

cfn-lint checks the template as written; this checks what CloudFormation will actually receive:
that the SAM transform accepts the template, and that the IAM roles SAM generates hold only our
managed policies plus the service basics (logs, X-Ray, the SQS poller for SQS-driven functions,
the DLQ send for the inbox), with no policy SAM adds on its own initiative; and that the sandbox
comes out in tenant isolation mode with nothing attached that the mode refuses.

Run by `make lint` in the lint virtualenv (aws-sam-translator pins its own pydantic).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its feature-toggle chatter

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASIC = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}  # write own logs and traces


class NoManagedPolicies:
    """Every policy in the template is a !Ref to our own; SAM must never need to look names up."""

    def load(self) -> dict[str, str]:
        raise AssertionError("the template names an AWS managed policy; use our own managed policies")


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` uploads: local code paths become S3 objects, the image an ECR URI."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            if props.get("PackageType") == "Image":
                props["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agents-api-sandbox:python3.11-v1"
            else:
                props["CodeUri"] = f"s3://packaged/{props['CodeUri'].strip('/')}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://packaged/{props['ContentUri'].strip('/')}.zip"
    return template


def expand() -> dict[str, Any]:
    template = packaged(yaml_parse((ROOT / "template.yaml").read_text()))
    parameters = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                  "AWS::StackName": "agents-api"}
    return transform(template, parameters, NoManagedPolicies())


def problems(expanded: dict[str, Any]) -> list[str]:
    found = []
    resources = expanded["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role" or name == "SandboxRole":
            continue
        props = resource["Properties"]
        managed = props.get("ManagedPolicyArns", [])
        aws_managed = {m.rsplit("/", 1)[-1] for m in managed if isinstance(m, str)}
        if aws_managed - BASIC:
            found.append(f"{name}: AWS managed policies beyond the basics: {sorted(aws_managed - BASIC)}")
        for policy in props.get("Policies", []):
            label = policy["PolicyName"]
            statements = policy["PolicyDocument"]["Statement"]
            actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
            if label == "DeadLetterQueuePolicy" and actions == {"sqs:SendMessage"}:  # the inbox's own DLQ
                continue
            found.append(f"{name}: inline policy {label} added by SAM: {sorted(actions)}")
    sandbox_permissions = [n for n, r in resources.items() if r["Type"] == "AWS::Lambda::Permission"
                           and "SandboxFunction" in json.dumps(r["Properties"]["FunctionName"])]
    if sandbox_permissions:
        found.append(f"the sandbox may be invoked through {sandbox_permissions}")
    found += tenancy_problems(resources)
    return found


def tenancy_problems(resources: dict[str, Any]) -> list[str]:
    """The sandbox reaches CloudFormation in tenant isolation mode, with nothing attached that the
    mode refuses (provisioned concurrency, SnapStart, a function URL, an event source mapping)."""
    sandbox = resources.get("SandboxFunction", {})
    if sandbox.get("Type") != "AWS::Lambda::Function":
        return ["SandboxFunction did not expand to an AWS::Lambda::Function"]
    found = []
    props = sandbox["Properties"]
    if props.get("TenancyConfig") != {"TenantIsolationMode": "PER_TENANT"}:
        found.append(f"the sandbox is not in tenant isolation mode after the transform: {props.get('TenancyConfig')}")
    if props.get("SnapStart"):
        found.append("the sandbox has SnapStart, which tenant isolation mode refuses")
    for name, resource in resources.items():
        if "SandboxFunction" not in json.dumps(resource.get("Properties", {})):
            continue
        if resource["Type"] in ("AWS::Lambda::Url", "AWS::Lambda::EventSourceMapping"):
            found.append(f"{name} ({resource['Type']}) targets the sandbox, which tenant isolation mode refuses")
        if resource["Type"] == "AWS::Lambda::Alias" and "ProvisionedConcurrencyConfig" in resource["Properties"]:
            found.append(f"{name} gives the sandbox provisioned concurrency, which tenant isolation mode refuses")
    return found


def main() -> int:
    expanded = expand()
    issues = problems(expanded)
    for issue in issues:
        print(f"SAM check: {issue}", file=sys.stderr)
    roles = sum(1 for r in expanded["Resources"].values() if r["Type"] == "AWS::IAM::Role")
    print(f"SAM transform: {len(expanded['Resources'])} resources, {roles} roles, "
          f"{'no extra permissions, sandbox per tenant' if not issues else f'{len(issues)} problem(s)'}")
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main())
