"""template.yaml is the product's security boundary in AWS: these tests pin its properties, so a
later edit cannot quietly weaken them. (cfn-lint and checkov check the rest: `make lint`.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE, _ = decode_str((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}

# Least privilege, one line per function: the managed policies it holds, and nothing else.
EXPECTED_POLICIES = {
    "AuthorizerFunction": {"KeyLookupPolicy"},
    "AgentsFunction": {"TableReadWritePolicy"},
    "FilesFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "FileUploadObjectsPolicy"},
    "FileUploadsFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "FileUploadObjectsPolicy"},
    "UsageRecountFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "SessionObjectsPolicy"},
    "ConversationsFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "SessionObjectsPolicy", "InvokeSandboxPolicy",
                              "SandboxExchangeObjectsPolicy", "ModelSecretPolicy"},
    "BatchApiFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "SendBatchRequestsPolicy"},
    "BatchWorkerFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "SessionObjectsPolicy", "InvokeSandboxPolicy",
                            "SandboxExchangeObjectsPolicy", "ModelSecretPolicy", "ConsumeBatchQueuePolicy"},
    "BatchDeadLetterFunction": {"TableReadWritePolicy", "FileObjectsPolicy", "ConsumeBatchDeadLettersPolicy"},
    "BatchInboxFunction": {"TableReadWritePolicy", "BatchInboxObjectsPolicy", "FileObjectsPolicy", "SendBatchRequestsPolicy"},
    "PlaygroundFunction": set(),  # static files from its own package
}
# Which sample events in events/ exercise which function.
EVENTS = {
    "AuthorizerFunction": "authorizer/*.json", "AgentsFunction": "agents/*.json", "FilesFunction": "files/*.json",
    "FileUploadsFunction": "files/s3_upload.json", "UsageRecountFunction": "usage_recount/*.json",
    "ConversationsFunction": "conversations/*.json",
    "BatchApiFunction": "batch/*.json", "BatchWorkerFunction": "batch_worker/sqs_request.json",
    "BatchDeadLetterFunction": "batch_worker/sqs_dead_letter.json", "BatchInboxFunction": "batch_worker/s3_inbox.json",
    "SandboxFunction": "sandbox/*.json", "PlaygroundFunction": "playground/*.json",
}


def props(name: str) -> dict[str, Any]:
    return RESOURCES[name]["Properties"]


def refs(value: Any) -> set[str]:
    """Every resource or parameter a value refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                found |= refs(inner)
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


def statements(policy_name: str) -> list[dict[str, Any]]:
    found = []
    for statement in props(policy_name)["PolicyDocument"]["Statement"]:
        if "Fn::If" in statement:  # both branches count
            found.extend(statement["Fn::If"][1:])
        else:
            found.append(statement)
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def function_policies(name: str) -> set[str]:
    return refs(props(name).get("Policies", [])) - {"AWS::NoValue"}


def sandbox_name() -> str:
    """The sandbox's fixed name (its role and log group name it before the function exists)."""
    name = props("SandboxFunction")["FunctionName"]["Fn::Sub"]
    assert name.startswith("${AWS::StackName}-")
    return str(name)


# -- the sandbox -------------------------------------------------------------------------------

def test_sandbox_is_a_container_image_in_the_isolated_vpc_with_bounded_concurrency() -> None:
    sandbox = props("SandboxFunction")
    assert sandbox["PackageType"] == "Image"
    assert RESOURCES["SandboxFunction"]["Metadata"]["DockerContext"] == "./sandbox_image"
    assert refs(sandbox["VpcConfig"]["SubnetIds"]) == {"SandboxSubnetA", "SandboxSubnetB"}
    assert refs(sandbox["VpcConfig"]["SecurityGroupIds"]) == {"SandboxSecurityGroup"}
    # Reserved only when asked for (a new account has no room for any: the deploy would fail).
    assert sandbox["ReservedConcurrentExecutions"] == {"Fn::If": ["HasSandboxReservedConcurrency",
                                                                  {"Ref": "SandboxReservedConcurrency"},
                                                                  {"Ref": "AWS::NoValue"}]}
    assert TEMPLATE["Conditions"]["HasSandboxReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SandboxReservedConcurrency"}, 0]}]}
    assert TEMPLATE["Parameters"]["SandboxReservedConcurrency"]["Default"] == 0
    assert set(sandbox["Environment"]["Variables"]) <= {"SANDBOX_TIMEOUT_S", "SANDBOX_MEMORY_MB", "SANDBOX_WORK_ROOT",
                                                        "SANDBOX_MAX_SESSION_BYTES"}


def test_sandbox_environments_are_never_shared_between_tenants() -> None:
    """Lambda's tenant isolation mode: an invoke runs only in environments dedicated to its
    TenantId (the caller's workspace, tests/integration/test_sandbox_adapters.py). The mode
    refuses provisioned concurrency, SnapStart, function URLs and event sources other than API
    Gateway; none may appear on the sandbox, directly, through Globals or as separate resources."""
    sandbox = props("SandboxFunction")
    assert sandbox["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
    conflicting = {"ProvisionedConcurrencyConfig", "AutoPublishAlias", "SnapStart", "FunctionUrlConfig", "Events"}
    assert not conflicting & set(sandbox)
    assert not conflicting & set(TEMPLATE["Globals"]["Function"])
    for name, resource in RESOURCES.items():
        if "SandboxFunction" in refs(resource.get("Properties", {})):
            assert resource["Type"] not in ("AWS::Lambda::Url", "AWS::Lambda::EventSourceMapping"), name
            assert "ProvisionedConcurrencyConfig" not in resource["Properties"], name


def test_sandbox_network_reaches_nothing_but_the_buckets_sandbox_prefix() -> None:
    """No internet gateway, NAT, route or DNS: the one way out is an S3 gateway endpoint whose
    policy admits this account's GET and PUT of the bucket's sandbox/ objects and nothing else,
    and the security group's only egress is HTTPS to S3's prefix list."""
    kinds = {r["Type"] for r in RESOURCES.values()}
    assert not kinds & {"AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::NatGateway",
                        "AWS::EC2::EgressOnlyInternetGateway", "AWS::EC2::Route",
                        "AWS::EC2::VPCPeeringConnection", "AWS::EC2::TransitGatewayAttachment",
                        "AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::EIP"}
    assert props("SandboxVpc")["EnableDnsSupport"] is False  # no Route 53 Resolver: no DNS exfiltration
    [endpoint] = [name for name, r in RESOURCES.items() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    gateway = props(endpoint)
    assert gateway["VpcEndpointType"] == "Gateway" and gateway["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
    assert refs(gateway["RouteTableIds"]) == {"SandboxRouteTable"} and refs(gateway["VpcId"]) == {"SandboxVpc"}
    [allow] = gateway["PolicyDocument"]["Statement"]
    assert allow["Effect"] == "Allow" and sorted(actions(allow)) == ["s3:GetObject", "s3:PutObject"]
    assert allow["Resource"]["Fn::Sub"].endswith("-files/sandbox/*")
    assert allow["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
    group = props("SandboxSecurityGroup")
    assert "SecurityGroupIngress" not in group
    [rule] = group["SecurityGroupEgress"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert rule["DestinationPrefixListId"] == {"Ref": "S3PrefixListId"} and "CidrIp" not in rule
    # Without the prefix list the deploy stops (an empty one would leave the runner no way to S3).
    [assertion] = TEMPLATE["Rules"]["S3PrefixListGiven"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "S3PrefixListId"}, ""]}]}
    for subnet in ("SandboxSubnetA", "SandboxSubnetB"):
        assert props(subnet).get("MapPublicIpOnLaunch") is False


def test_sandbox_role_can_only_write_its_own_logs() -> None:
    role = props("SandboxRole")
    assert "ManagedPolicyArns" not in role and "PermissionsBoundary" not in role
    statements_ = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    granted = [a for s in statements_ if s["Effect"] == "Allow" for a in actions(s)]
    data_plane = [a for a in granted if not re.match(r"^(logs:(CreateLogStream|PutLogEvents)|ec2:\w+NetworkInterfaces?|"
                                                     r"ec2:(Assign|Unassign)PrivateIpAddresses)$", a)]
    assert data_plane == []
    # the network-interface actions are Lambda's, for attaching the function; code inside it may not use them
    [deny] = [s for s in statements_ if s["Effect"] == "Deny"]
    assert actions(deny) == ["ec2:*"]
    name = sandbox_name()
    assert deny["Condition"]["ArnEquals"]["lambda:SourceFunctionArn"]["Fn::Sub"].endswith(f":function:{name}")
    log_statement = next(s for s in statements_ if "logs:PutLogEvents" in actions(s))
    assert log_statement["Resource"]["Fn::Sub"].endswith(f":log-group:/aws/lambda/{name}:*")
    attached = [name for name, r in RESOURCES.items() if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
                and "SandboxRole" in refs(r["Properties"].get("Roles", []))]
    assert attached == []


def test_nothing_but_the_conversation_runners_may_invoke_the_sandbox() -> None:
    sandbox = props("SandboxFunction")
    assert "Events" not in sandbox and "FunctionUrlConfig" not in sandbox
    permissions = [name for name, r in RESOURCES.items() if r["Type"] == "AWS::Lambda::Permission"
                   and "SandboxFunction" in refs(r["Properties"])]
    assert permissions == []
    invokers = {name for name in FUNCTIONS if "InvokeSandboxPolicy" in function_policies(name)}
    assert invokers == {"ConversationsFunction", "BatchWorkerFunction"}
    [statement] = statements("InvokeSandboxPolicy")
    assert actions(statement) == ["lambda:InvokeFunction"] and refs(statement["Resource"]) == {"SandboxFunction"}


# -- least privilege ----------------------------------------------------------------------------

def test_each_function_holds_exactly_the_policies_it_needs() -> None:
    assert set(FUNCTIONS) - {"SandboxFunction"} == set(EXPECTED_POLICIES)
    for name, expected in EXPECTED_POLICIES.items():
        assert function_policies(name) == expected, name
        assert all(isinstance(p, dict) for p in props(name).get("Policies", [])), f"{name}: no SAM policy templates or inline policies"


def test_no_policy_grants_wildcards_scan_or_table_administration() -> None:
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        for statement in statements(name):
            for action in actions(statement):
                assert "*" not in action, (name, action)
                assert action not in ("dynamodb:Scan", "dynamodb:DeleteTable", "dynamodb:UpdateTable"), (name, action)
            if statement["Effect"] == "Allow":
                assert statement["Resource"] != "*", name


def test_authorizer_reads_only_key_items_and_handlers_cannot_write_keys() -> None:
    [lookup] = statements("KeyLookupPolicy")
    assert actions(lookup) == ["dynamodb:GetItem"]
    assert lookup["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["APIKEY#*"]
    deny = next(s for s in statements("TableReadWritePolicy") if s["Effect"] == "Deny")
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= set(actions(deny))
    assert deny["Condition"]["ForAnyValue:StringLike"]["dynamodb:LeadingKeys"] == ["APIKEY#*"]


def test_object_policies_are_confined_to_their_prefix() -> None:
    for policy, prefix in (("FileObjectsPolicy", "files/"), ("SessionObjectsPolicy", "sessions/"),
                           ("BatchInboxObjectsPolicy", "batch-inbox/"), ("SandboxExchangeObjectsPolicy", "sandbox/")):
        for statement in statements(policy):
            if "s3:ListBucket" in actions(statement):
                assert statement["Condition"]["StringLike"]["s3:prefix"] == [f"{prefix}*"]
            else:
                assert statement["Resource"]["Fn::Sub"].endswith(f"-files/{prefix}*")


def test_no_secret_travels_in_environment_variables() -> None:
    for name, function in FUNCTIONS.items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "API_KEYS" not in variables and "MISTRAL_API_KEY" not in variables and "LLM_API_KEY" not in variables, name
    secret = TEMPLATE["Parameters"]["ModelApiKeySecret"]
    assert "NoEcho" not in secret and "arn" in secret["Description"].lower()  # a reference, not the key


def test_api_requires_the_key_authorizer_on_every_route() -> None:
    auth = props("Api")["Auth"]
    assert auth["DefaultAuthorizer"] == "KeyAuthorizer"
    authorizer = auth["Authorizers"]["KeyAuthorizer"]
    assert authorizer["FunctionPayloadType"] == "TOKEN" and refs(authorizer["FunctionArn"]) == {"AuthorizerFunction"}
    assert authorizer["Identity"]["Header"] == "Authorization"
    for name, function in FUNCTIONS.items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                assert refs(event["Properties"]["RestApiId"]) == {"Api"}, name
                if name != PLAYGROUND:  # static files only (test_only_the_playground_page_is_outside_the_authorizer)
                    assert "Auth" not in event["Properties"], f"{name} must not opt out of the authorizer"
    assert props("Api")["OpenApiVersion"]  # else SAM adds a second stage, "Stage", outside throttling and alarms
    assert authorizer["Identity"]["ReauthorizeEvery"] <= 60
    for name in EXPECTED_POLICIES:
        variables = props(name)["Environment"]["Variables"]
        if "Api" in {e["Type"] for e in props(name).get("Events", {}).values()} or name in (
                "AuthorizerFunction",):
            assert variables["AUTH_MODE"] == "keys", name  # never open, whatever the code's default
    # API Gateway caches the authorizer's answer: a second cache would stretch a revoked key's life
    assert props("AuthorizerFunction")["Environment"]["Variables"]["AUTH_CACHE_TTL_S"] == "0"
    # No function URL anywhere: every route is behind the authorizer and the stage's throttling.
    assert not [n for n, r in RESOURCES.items() if r["Type"] == "AWS::Lambda::Url"]
    assert not [n for n, f in FUNCTIONS.items() if "FunctionUrlConfig" in f["Properties"]]


PLAYGROUND = "PlaygroundFunction"


def test_every_function_that_stores_bytes_counts_them_against_the_workspace_quota() -> None:
    storing = {name for name, held in EXPECTED_POLICIES.items() if held & {"FileObjectsPolicy", "SessionObjectsPolicy"}}
    assert storing >= {"FilesFunction", "ConversationsFunction", "BatchWorkerFunction", "FileUploadsFunction"}
    for name in storing:
        assert props(name)["Environment"]["Variables"]["STORAGE_QUOTA_BYTES"] == {"Ref": "StorageQuotaBytes"}, name
    assert TEMPLATE["Parameters"]["StorageQuotaBytes"]["Default"] == 10 * 1024**3
    usage = props("FilesFunction")["Events"]["Usage"]["Properties"]
    assert (usage["Path"], usage["Method"]) == ("/v1/usage", "ANY")  # the function answers GET, and 405 with Allow
    recount = props("UsageRecountFunction")  # what the lifecycle rules expire stops counting within a day
    assert recount["Handler"] == "app.recount_handler" and recount["CodeUri"] == "functions/files/"
    assert [e["Properties"]["Schedule"] for e in recount["Events"].values()] == ["rate(1 day)"]


def test_only_the_playground_page_is_outside_the_authorizer() -> None:
    """The page's routes skip the authorizer (a browser cannot send a key for the page itself), so
    the function behind them must be able to do nothing but serve its own files."""
    open_routes = {(name, e["Properties"]["Path"], e["Properties"]["Method"])
                   for name, function in FUNCTIONS.items() for e in function["Properties"].get("Events", {}).values()
                   if e["Type"] == "Api" and "Auth" in e["Properties"]}
    assert open_routes == {(PLAYGROUND, "/", "GET"), (PLAYGROUND, "/playground", "GET"),
                           (PLAYGROUND, "/playground/{proxy+}", "GET")}
    for event in props(PLAYGROUND)["Events"].values():
        assert event["Properties"]["Auth"] == {"Authorizer": "NONE"}
    playground = props(PLAYGROUND)
    assert function_policies(PLAYGROUND) == set() and "Policies" not in playground
    # No table, bucket or queue to reach; its turns stream through API Gateway, on its own origin.
    assert playground["Environment"]["Variables"] == {"AUTH_MODE": "keys", "MODEL_PROVIDER": {"Ref": "ModelProvider"}}
    assert playground["CodeUri"] == "functions/playground/" and "VpcConfig" not in playground


def test_conversation_turns_stream_through_api_gateway_behind_the_authorizer() -> None:
    """A Regional REST API (streams may be idle 5 minutes there, 30 s on edge-optimized), every
    /v1/conversations route integrated with response streaming for up to 15 minutes, on the key
    authorizer like the rest (docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html)."""
    assert props("Api")["EndpointConfiguration"] == {"Type": "REGIONAL"}
    conversations = props("ConversationsFunction")
    events = {e["Properties"]["Path"]: e["Properties"] for e in conversations["Events"].values()}
    assert set(events) == {"/v1/conversations", "/v1/conversations/{proxy+}", "/mcp"}
    for route in events.values():
        assert route["Method"] == "ANY" and route["ResponseTransferMode"] == "RESPONSE_STREAM"
        assert route["TimeoutInMillis"] == 900_000 and "Auth" not in route
    # The Lambda Web Adapter streams the handler's response (a Python handler cannot by itself).
    assert conversations["Handler"] == "run.sh" and conversations["Environment"]["Variables"]["AWS_LWA_INVOKE_MODE"] == \
        "response_stream"
    layers = conversations["Layers"][1]["Fn::If"]
    assert layers[0] == "IsArm64" and "LambdaAdapterLayerArm64" in layers[1]["Fn::Sub"] and \
        "LambdaAdapterLayerX86" in layers[2]["Fn::Sub"]
    other_routes = {e["Properties"]["Path"] for name, f in FUNCTIONS.items() if name != "ConversationsFunction"
                    for e in f["Properties"].get("Events", {}).values() if e["Type"] == "Api"}
    assert not [path for path in other_routes if path.startswith("/v1/conversations")]


def test_the_mcp_server_is_served_by_the_conversations_function_behind_the_authorizer() -> None:
    """/mcp runs code as turns do: the same function (its sandbox and session permissions), the
    same key authorizer, streamed for 15 minutes so that a long cell is not cut at 29 s; its web
    app and the local front end route /mcp to the same module."""
    mcp = [(name, e["Properties"]) for name, f in FUNCTIONS.items() for e in f["Properties"].get("Events", {}).values()
           if e["Type"] == "Api" and e["Properties"]["Path"].startswith("/mcp")]
    assert [(name, route["Path"], route["Method"]) for name, route in mcp] == [("ConversationsFunction", "/mcp", "ANY")]
    route = mcp[0][1]
    assert route["ResponseTransferMode"] == "RESPONSE_STREAM" and route["TimeoutInMillis"] == 900_000
    assert "Auth" not in route and refs(route["RestApiId"]) == {"Api"}
    web = (ROOT / "functions" / "conversations" / "web.py").read_text()
    assert 'if path == "/mcp":' in web and "mcp_app.lambda_handler" in web
    from local.apigw import ROUTES

    assert ROUTES["/mcp"] == "conversations/mcp_app"
    assert (ROOT / "functions" / "conversations" / "mcp_app.py").is_file()


def test_one_runtime_lambda_keeps_on_the_chosen_architecture() -> None:
    assert TEMPLATE["Parameters"]["Architecture"] == {
        "Type": "String", "Default": "arm64", "AllowedValues": ["arm64", "x86_64"],
        "Description": TEMPLATE["Parameters"]["Architecture"]["Description"]}
    assert TEMPLATE["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    for name, function in FUNCTIONS.items():
        properties = function["Properties"]
        if properties.get("PackageType") == "Image":
            continue
        assert properties["Runtime"] == "python3.13", name
        assert function["Metadata"]["BuildMethod"] == "makefile", name  # sam build here: no python3.13, no Docker
    layer = props("SharedLayer")
    assert layer["CompatibleRuntimes"] == ["python3.13"] and layer["CompatibleArchitectures"] == ["arm64", "x86_64"]
    assert RESOURCES["SharedLayer"]["Metadata"]["BuildMethod"] == "makefile"
    assert "FROM public.ecr.aws/lambda/python:3.13" in (ROOT / "sandbox_image" / "Dockerfile").read_text()


def test_timeouts_follow_from_the_execution_limit_and_leave_every_caller_time_to_answer() -> None:
    """For each allowed execution limit: the sandbox function outlives the execution, the invoke
    outwaits the sandbox function, a turn's budget fits one more execution and the answer inside
    the conversation functions, which fit inside API Gateway's 15-minute streams."""
    from agentsapi.adapters.lambda_sandbox import INVOKE_HEADROOM_S

    allowed = TEMPLATE["Parameters"]["SandboxTimeoutSeconds"]["AllowedValues"]
    rows = TEMPLATE["Mappings"]["TimeoutsBySandboxTimeout"]
    assert sorted(int(v) for v in allowed) == sorted(int(k) for k in rows)
    conversation_timeout = props("ConversationsFunction")["Timeout"]
    worker_timeout = props("BatchWorkerFunction")["Timeout"]
    api_timeout_s = min(e["Properties"]["TimeoutInMillis"] for e in props("ConversationsFunction")["Events"].values()) / 1000
    for execution, row in rows.items():
        execution_s = int(execution)
        assert row["SandboxFunction"] >= execution_s + 60, execution  # start, inputs and outputs by reference
        assert execution_s + INVOKE_HEADROOM_S > row["SandboxFunction"], execution  # the invoke hears back
        assert row["TurnBudget"] + 30 <= min(conversation_timeout, worker_timeout), execution  # time to store and answer
        assert execution_s + INVOKE_HEADROOM_S < row["TurnBudget"], execution  # one execution fits a turn
    assert conversation_timeout <= api_timeout_s <= 900
    assert props("SandboxFunction")["Timeout"] == {"Fn::FindInMap": ["TimeoutsBySandboxTimeout",
                                                                     {"Ref": "SandboxTimeoutSeconds"}, "SandboxFunction"]}
    for name in ("ConversationsFunction", "BatchWorkerFunction"):
        assert props(name)["Environment"]["Variables"]["TURN_TIMEOUT_S"] == {
            "Fn::FindInMap": ["TimeoutsBySandboxTimeout", {"Ref": "SandboxTimeoutSeconds"}, "TurnBudget"]}
    assert int(props("BatchWorkerFunction")["Environment"]["Variables"]["BATCH_LEASE_S"]) >= worker_timeout


def test_resources_that_hold_data_or_logs_say_what_happens_to_them() -> None:
    """The table and the bucket outlive the stack; queues and log groups go with it (a new stack of
    the same name must be able to create its log groups; work in the queues is the stack's own)."""
    expected = {"AWS::DynamoDB::Table": "Retain", "AWS::S3::Bucket": "Retain", "AWS::SQS::Queue": "Delete",
                "AWS::Logs::LogGroup": "Delete"}
    raw = (ROOT / "template.yaml").read_text()
    for name, resource in RESOURCES.items():
        if resource["Type"] in expected:
            block = raw.split(f"\n  {name}:\n", 1)[1].split("\n  ", 1)[0] + raw.split(f"\n  {name}:\n", 1)[1]
            assert f"DeletionPolicy: {expected[resource['Type']]}" in block[:400], name
            assert f"UpdateReplacePolicy: {expected[resource['Type']]}" in block[:400], name
    assert props("BatchQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600  # SQS's longest; 4 days by default


@pytest.mark.parametrize("kind,status,error_type", [("UNAUTHORIZED", 401, "authentication_error"),
                                                     ("THROTTLED", 429, "rate_limit_error"),
                                                     ("DEFAULT_4XX", None, "invalid_request_error"),
                                                     ("DEFAULT_5XX", None, "server_error")])
def test_gateway_refusals_use_the_api_error_shape(kind: str, status: int | None, error_type: str) -> None:
    response = props("Api")["GatewayResponses"][kind]
    assert response.get("StatusCode") == (str(status) if status else None)
    body = json.loads(response["ResponseTemplates"]["application/json"]
                      .replace("$context.error.messageString", json.dumps("Forbidden")))
    assert body["object"] == "error" and body["type"] == error_type and isinstance(body["message"], str)


# -- data ---------------------------------------------------------------------------------------

def test_table_has_pitr_encryption_ttl_and_survives_stack_deletion() -> None:
    table = props("Table")
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert RESOURCES["Table"]["DeletionPolicy"] == "Retain"


def test_bucket_is_private_encrypted_tls_only_with_expiry_rules() -> None:
    bucket = props("Bucket")
    assert all(bucket["PublicAccessBlockConfiguration"][k] is True
               for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    [deny] = props("BucketPolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    expiring = {rule.get("Prefix") for rule in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in rule}
    assert expiring == {"sessions/", "batch-inbox/", "uploads/", "upload-intents/", "sandbox/"}


def test_signed_uploads_are_confined_to_their_prefixes_and_notified_from_uploads_only() -> None:
    from agentsapi.payloads import DIRECT_UPLOAD_MAX_BYTES

    for statement in statements("FileUploadObjectsPolicy"):
        if "s3:ListBucket" in actions(statement):
            assert statement["Condition"]["StringLike"]["s3:prefix"] == ["uploads/*", "upload-intents/*"]
        else:
            assert sorted(r["Fn::Sub"].rsplit("-files/", 1)[1] for r in statement["Resource"]) == \
                ["upload-intents/*", "uploads/*"]
            assert set(actions(statement)) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    [event] = props("FileUploadsFunction")["Events"].values()
    assert event["Type"] == "S3" and refs(event["Properties"]["Bucket"]) == {"Bucket"}
    assert event["Properties"]["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    assert props("FileUploadsFunction")["Handler"] == "app.uploads_handler"
    # API Gateway's own 413 names the signed upload, and the figure the code enforces.
    too_large = props("Api")["GatewayResponses"]["REQUEST_TOO_LARGE"]
    body = json.loads(too_large["ResponseTemplates"]["application/json"])
    assert too_large["StatusCode"] == "413" and body["param"] == "file" and body["type"] == "invalid_request_error"
    assert "POST /v1/files/uploads" in body["message"] and str(DIRECT_UPLOAD_MAX_BYTES) in body["message"]


def test_each_queue_is_consumed_by_its_own_function_with_a_policy_for_that_queue_only() -> None:
    mappings = {refs(r["Properties"]["FunctionName"]).pop(): r["Properties"] for r in RESOURCES.values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert {name: refs(m["EventSourceArn"]) for name, m in mappings.items()} == {
        "BatchWorkerFunction": {"BatchQueue"}, "BatchDeadLetterFunction": {"BatchDeadLetterQueue"}}
    for mapping in mappings.values():
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    worker = mappings["BatchWorkerFunction"]
    # how many run at once: the event source's cap, with no concurrency reserved (pollers would not see it)
    assert refs(worker["ScalingConfig"]["MaximumConcurrency"]) == {"BatchWorkerConcurrency"}
    assert "ReservedConcurrentExecutions" not in props("BatchWorkerFunction")
    for policy, queue in (("ConsumeBatchQueuePolicy", "BatchQueue"), ("ConsumeBatchDeadLettersPolicy", "BatchDeadLetterQueue")):
        [statement] = statements(policy)
        assert refs(statement["Resource"]) == {queue}
    # SAM SQS events would attach AWSLambdaSQSQueueExecutionRole (every queue in the account)
    assert not any(e["Type"] == "SQS" for f in FUNCTIONS.values() for e in f["Properties"].get("Events", {}).values())


def test_consumed_queues_hide_messages_longer_than_their_consumer_runs() -> None:
    """Lambda refuses an SQS mapping whose queue's visibility timeout is below the function's timeout."""
    default_timeout = TEMPLATE["Globals"]["Function"]["Timeout"]
    for mapping in (r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"):
        function = refs(mapping["FunctionName"]).pop()
        queue = refs(mapping["EventSourceArn"]).pop()
        timeout = props(function).get("Timeout", default_timeout)
        assert props(queue).get("VisibilityTimeout", 30) >= 6 * timeout, (queue, function)


def test_batch_queue_has_a_dead_letter_queue_and_outlives_the_worker() -> None:
    queue = props("BatchQueue")
    assert refs(queue["RedrivePolicy"]["deadLetterTargetArn"]) == {"BatchDeadLetterQueue"}
    assert 1 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert queue["VisibilityTimeout"] >= 6 * props("BatchWorkerFunction")["Timeout"]
    assert refs(props("BatchInboxFunction")["DeadLetterQueue"]["TargetArn"]) == {"InboxDeadLetterQueue"}
    for name in ("BatchQueue", "BatchDeadLetterQueue", "InboxDeadLetterQueue"):
        assert props(name)["SqsManagedSseEnabled"] is True


def test_every_function_has_a_log_group_with_retention() -> None:
    groups = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert all("RetentionInDays" in g for g in groups)
    named = {ref for g in groups for ref in refs(g["LogGroupName"])}
    assert set(FUNCTIONS) - {"SandboxFunction"} <= named
    assert any(g["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{sandbox_name()}"} for g in groups)


# -- operations ---------------------------------------------------------------------------------

def alarms() -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_alarms_cover_errors_throttles_dead_letters_and_sandbox_timeouts() -> None:
    found = alarms()
    watched = {(a.get("Namespace"), a.get("MetricName")) for a in found.values()}
    for alarm in found.values():
        assert refs(alarm["AlarmActions"]) == {"AlarmTopic"}
        for metric in alarm.get("Metrics", []):
            if "MetricStat" in metric:
                stat = metric["MetricStat"]["Metric"]
                watched.add((stat["Namespace"], stat["MetricName"]))
    assert {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/ApiGateway", "5XXError"),
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AgentsApi", "CodeExecutionsTimeout")} <= watched
    every_error = {ref for a in found.values() for m in a.get("Metrics", []) if "MetricStat" in m
                   and m["MetricStat"]["Metric"]["MetricName"] == "Errors" for ref in refs(m)}
    assert set(FUNCTIONS) <= every_error
    queues = {ref for a in found.values() if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
              for ref in refs(a["Dimensions"])}
    assert queues == {"BatchDeadLetterQueue", "InboxDeadLetterQueue"}


def test_the_timeout_alarm_watches_a_metric_the_code_emits() -> None:
    from aws_lambda_powertools import Metrics

    from agentsapi.adapters.powertools_telemetry import PowertoolsTelemetry

    alarm = alarms()["SandboxTimeoutsAlarm"]
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    metrics = Metrics()
    metrics.clear_metrics()
    try:
        PowertoolsTelemetry().code_execution("timeout", 30_000.0, 30_000.0)
        assert alarm["MetricName"] in metrics.serialize_metric_set()
    finally:
        metrics.clear_metrics()


def test_every_function_has_sample_events() -> None:
    assert set(EVENTS) == set(FUNCTIONS)
    for name, pattern in EVENTS.items():
        assert list((ROOT / "events").glob(pattern)), f"{name}: no sample event matches events/{pattern}"


def test_every_kind_of_blob_key_lies_under_the_prefix_its_policy_grants() -> None:
    """The key layouts (blobs.py) and the object policies (template.yaml) name the same prefixes:
    a key function that drifted would put its objects where no function may touch them."""
    from agentsapi import blobs

    granted = {}
    for policy in ("FileObjectsPolicy", "FileUploadObjectsPolicy", "SandboxExchangeObjectsPolicy", "SessionObjectsPolicy"):
        for statement in statements(policy):
            if "s3:GetObject" in actions(statement):
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for resource in resources:
                    granted[resource["Fn::Sub"].rsplit("-files/", 1)[1]] = policy
    keys = {blobs.file_key("ws", "f"): "FileObjectsPolicy", blobs.upload_key("ws", "f"): "FileUploadObjectsPolicy",
            blobs.upload_intent_key("ws", "f"): "FileUploadObjectsPolicy",
            blobs.exchange_key("0f1e", "out/0"): "SandboxExchangeObjectsPolicy",
            blobs.session_key("ws", "conv", "entry"): "SessionObjectsPolicy"}
    assert keys == {"files/ws/f": "FileObjectsPolicy", "uploads/ws/f": "FileUploadObjectsPolicy",
                    "upload-intents/ws/f": "FileUploadObjectsPolicy", "sandbox/0f1e/out/0": "SandboxExchangeObjectsPolicy",
                    "sessions/ws/conv/entry": "SessionObjectsPolicy"}
    for key, policy in keys.items():
        assert granted[key.split("/", 1)[0] + "/*"] == policy, key
    assert blobs.SANDBOX_PREFIX == "sandbox/" and blobs.session_prefix("ws", "conv") == "sessions/ws/conv/"
