"""Regenerate the sample events in this folder: `python events/generate.py`.

One folder per function in template.yaml. API events are exactly what API Gateway (REST, proxy
integration, behind the key authorizer) hands to the function, with the authorizer's context
(workspace ``sample-workspace``); the authorizer gets API Gateway's TOKEN event; the streaming
function gets a function URL event (the Lambda Web Adapter turns it into an HTTP request). Ids
in paths and bodies are placeholders (``{agent_id}``, ``{conversation_id}``, ``{entry_id}``)
that the integration tests fill in; `sam local invoke -e` needs real ids from your table.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

sys.path.insert(0, str(HERE.parent / "layers"))

from local.apigw import make_event  # noqa: E402

HEADERS = {"authorization": "Bearer sample-key", "content-type": "application/json", "accept": "application/json",
           "user-agent": "mistral-client-python/3.7.0"}
SAMPLE_WORKSPACE = "sample-workspace"
# What the key authorizer adds to every request it lets through.
AUTHORIZER_CONTEXT = {"workspace": SAMPLE_WORKSPACE, "principalId": SAMPLE_WORKSPACE, "integrationLatency": 11}
UNSET = '%22~%3F~unset~%3F~sentinel~%3F~%22'

AGENTS = {
    "create_agent": ("POST", "/v1/agents", "", {"model": "mistral-medium-latest", "name": "calculator",
                                                 "instructions": "Use code to compute.",
                                                 "tools": [{"type": "code_interpreter"}],
                                                 "completion_args": {"temperature": 0.3}}),
    "list_agents": ("GET", "/v1/agents", f"page=0&page_size=20&metadata={UNSET}", None),
    "list_agents_pages": ("GET", "/v1/agents/pages", f"page_size=20&metadata={UNSET}", None),
    "get_agent": ("GET", "/v1/agents/{agent_id}", "", None),
    "update_agent": ("PATCH", "/v1/agents/{agent_id}", "", {"instructions": "Be brief."}),
    "switch_agent_version": ("PATCH", "/v1/agents/{agent_id}/version", "version=0", None),
    "list_agent_versions": ("GET", "/v1/agents/{agent_id}/versions", "page=0&page_size=20", None),
    "get_agent_version": ("GET", "/v1/agents/{agent_id}/versions/0", "", None),
    "put_agent_alias": ("PUT", "/v1/agents/{agent_id}/aliases", "alias=prod&version=0", None),
    "list_agent_aliases": ("GET", "/v1/agents/{agent_id}/aliases", "", None),
    "delete_agent_alias": ("DELETE", "/v1/agents/{agent_id}/aliases", "alias=prod", None),
    "delete_agent": ("DELETE", "/v1/agents/{agent_id}", "", None),
}
FILES = {
    "list_files": ("GET", "/v1/files", "page=0&page_size=100", None),
    "retrieve_file": ("GET", "/v1/files/{file_id}", "", None),
    "download_file": ("GET", "/v1/files/{file_id}/content", "", None),
    "get_file_signed_url": ("GET", "/v1/files/{file_id}/url", "expiry=24", None),
    "delete_file": ("DELETE", "/v1/files/{file_id}", "", None),
    "create_signed_upload": ("POST", "/v1/files/uploads", "", {"filename": "sales.parquet", "purpose": "batch",
                                                                "size": 200_000_000}),
    "storage_usage": ("GET", "/v1/usage", "", None),
}
BATCH = {
    "create_batch_job": ("POST", "/v1/batch/jobs", "", {
        "endpoint": "/v1/conversations", "model": "mistral-small-latest",
        "requests": [{"custom_id": "q1", "body": {"inputs": "```python\nprint(6 * 7)\n```",
                                                  "tools": [{"type": "code_interpreter"}]}}]}),
    "list_batch_jobs": ("GET", "/v1/batch/jobs", "page=0&page_size=100&status=QUEUED", None),
    "get_batch_job": ("GET", "/v1/batch/jobs/{job_id}", "", None),
    "cancel_batch_job": ("POST", "/v1/batch/jobs/{job_id}/cancel", "", None),
}
CONVERSATIONS = {
    "start_conversation": ("POST", "/v1/conversations", "",
                           {"inputs": "```python\nprint(6 * 7)\n```", "stream": False, "agent_id": "{agent_id}"}),
    "start_conversation_stream": ("POST", "/v1/conversations", "",
                                  {"inputs": "```python\nprint(6 * 7)\n```", "stream": True, "agent_id": "{agent_id}"}),
    "append_conversation": ("POST", "/v1/conversations/{conversation_id}", "",
                            {"inputs": "thanks", "stream": False, "store": True, "handoff_execution": "server"}),
    "restart_conversation": ("POST", "/v1/conversations/{conversation_id}/restart", "",
                             {"from_entry_id": "{entry_id}", "inputs": "again", "stream": False, "store": True,
                              "handoff_execution": "server"}),
    "list_conversations": ("GET", "/v1/conversations", f"page=0&page_size=100&metadata={UNSET}", None),
    "get_conversation": ("GET", "/v1/conversations/{conversation_id}", "", None),
    "get_conversation_history": ("GET", "/v1/conversations/{conversation_id}/history", "", None),
    "get_conversation_messages": ("GET", "/v1/conversations/{conversation_id}/messages", "", None),
    "delete_conversation": ("DELETE", "/v1/conversations/{conversation_id}", "", None),
}


def main() -> None:
    for folder, routes in (("agents", AGENTS), ("conversations", CONVERSATIONS), ("files", FILES), ("batch", BATCH)):
        (HERE / folder).mkdir(exist_ok=True)
        for name, (method, path, query, body) in routes.items():
            event = make_event(method, path, HEADERS, query, json.dumps(body) if body is not None else None)
            event["requestContext"]["requestId"] = f"sample-{name}"
            event["requestContext"]["requestTimeEpoch"] = 1764000000000
            event["requestContext"]["authorizer"] = AUTHORIZER_CONTEXT
            (HERE / folder / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
    boundary = "----sample"
    upload = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="data.csv"\r\n'
              f'Content-Type: text/csv\r\n\r\nx,y\n1,2\n\r\n--{boundary}\r\n'
              f'Content-Disposition: form-data; name="purpose"\r\n\r\nocr\r\n--{boundary}--\r\n')
    event = make_event("POST", "/v1/files", {**HEADERS, "content-type": f"multipart/form-data; boundary={boundary}"}, "",
                       base64.b64encode(upload.encode()).decode())
    event["isBase64Encoded"] = True
    event["requestContext"]["requestId"] = "sample-upload_file"
    event["requestContext"]["requestTimeEpoch"] = 1764000000000
    event["requestContext"]["authorizer"] = AUTHORIZER_CONTEXT
    (HERE / "files" / "upload_file.json").write_text(json.dumps(event, indent=2) + "\n")
    record = {"messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
              "body": json.dumps({"ws": "{ws}", "job_id": "{job_id}", "index": 0}),
              "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764000000000",
                             "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1764000000001"},
              "messageAttributes": {}, "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:agents-api-batch", "awsRegion": "us-east-1"}
    (HERE / "batch_worker").mkdir(exist_ok=True)
    (HERE / "batch_worker" / "sqs_request.json").write_text(json.dumps({"Records": [record]}, indent=2) + "\n")
    dead = {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "6"},
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:agents-api-batch-dlq"}
    (HERE / "batch_worker" / "sqs_dead_letter.json").write_text(json.dumps({"Records": [dead]}, indent=2) + "\n")
    inbox = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                          "eventTime": "2026-11-25T00:00:00.000Z", "eventName": "ObjectCreated:Put",
                          "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "{bucket}", "arn": "arn:aws:s3:::{bucket}"},
                                 "object": {"key": "batch-inbox/{ws}/model/mistral-small-latest/nightly.jsonl",
                                            "size": 64}}}]}
    (HERE / "batch_worker" / "s3_inbox.json").write_text(json.dumps(inbox, indent=2) + "\n")
    # FileUploadsFunction: S3 says a signed upload's bytes are in (the key names workspace and file id).
    uploaded = {"Records": [{**inbox["Records"][0], "eventName": "ObjectCreated:Post",
                             "s3": {**inbox["Records"][0]["s3"],
                                    "object": {"key": "uploads/{ws}/{file_id}", "size": 200_000_000}}}]}
    (HERE / "files" / "s3_upload.json").write_text(json.dumps(uploaded, indent=2) + "\n")
    # UsageRecountFunction: EventBridge's scheduled event, once a day.
    scheduled = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "time": "2026-11-25T03:00:00Z",
                 "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/agents-api-recount"],
                 "detail": {}}
    (HERE / "usage_recount").mkdir(exist_ok=True)
    (HERE / "usage_recount" / "scheduled.json").write_text(json.dumps(scheduled, indent=2) + "\n")
    write_mcp_events()
    write_authorizer_events()
    write_playground_events()
    sandbox = {"code": "import pandas as pd\ndf = pd.DataFrame({'x': [1, 2, 3]})\nprint(df.describe())\ndf.x.sum()",
               "timeout_s": 10, "files": [{"name": "data.csv", "content_b64": "eCx5CjEsMgo="}]}
    (HERE / "sandbox").mkdir(exist_ok=True)
    (HERE / "sandbox" / "execute.json").write_text(json.dumps(sandbox, indent=2) + "\n")
    # By reference, as the conversation runners send it in AWS (adapters/s3_exchange.py): presigned
    # URLs for exactly one execution's objects under sandbox/<execution>/ (shortened here).
    bucket = "https://agents-api-123456789012-us-east-1-files.s3.us-east-1.amazonaws.com/sandbox/0f1e2d3c"
    signed = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=90&X-Amz-Signature=..."
    by_reference = {"code": "import pandas as pd\ndf = pd.read_csv('data.csv')\ndf.describe()", "timeout_s": 30,
                    "files": [{"name": "data.csv", "ref": f"{bucket}/in/0{signed}"}],
                    "session": {"state_ref": f"{bucket}/in/session{signed}"},
                    "exchange": {"outputs": [f"{bucket}/out/{n}{signed}" for n in range(10)],
                                 "session": f"{bucket}/out/session{signed}",
                                 "resolve": {"agents-api-123456789012-us-east-1-files.s3.us-east-1.amazonaws.com":
                                             "52.216.0.1"}}}
    (HERE / "sandbox" / "execute_by_reference.json").write_text(json.dumps(by_reference, indent=2) + "\n")


def write_mcp_events() -> None:
    """POST /mcp (served by the conversations function) as the official MCP client sends it at
    revision 2026-07-28: the version and method in headers and in ``params._meta``."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "mcp", "version": "0.1.0"},
            "io.modelcontextprotocol/clientCapabilities": {}}
    calls = {"mcp_tools_list": ("tools/list", {}, {}),
             "mcp_run_python": ("tools/call", {"name": "run_python", "arguments": {"code": "print(6 * 7)"}},
                                {"mcp-name": "run_python"})}
    for name, (method, params, extra) in calls.items():
        body = {"jsonrpc": "2.0", "id": 2, "method": method, "params": {**params, "_meta": meta}}
        headers = {"authorization": "Bearer sample-key", "content-type": "application/json",
                   "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
                   "mcp-method": method, **extra, "user-agent": "python-httpx2/2.16.2"}
        event = make_event("POST", "/mcp", headers, "", json.dumps(body))
        event["requestContext"].update({"requestId": f"sample-{name}", "requestTimeEpoch": 1764000000000,
                                        "authorizer": AUTHORIZER_CONTEXT})
        (HERE / "conversations" / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")


def write_authorizer_events() -> None:
    (HERE / "authorizer").mkdir(exist_ok=True)
    arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/POST/v1/conversations"
    for name, token in (("token", "Bearer {api_key}"), ("token_unknown", "Bearer agk_not-a-key")):
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
        (HERE / "authorizer" / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")


# The playground's routes have no authorizer: no key, no authorizer context (the page's own API
# calls carry the key). (name, request path, API Gateway resource, path parameters)
PLAYGROUND = {
    "root_redirect": ("/", "/", None),
    "page_redirect": ("/playground", "/playground", None),
    "index": ("/playground/", "/playground/{proxy+}", {"proxy": ""}),
    "module": ("/playground/app.js", "/playground/{proxy+}", {"proxy": "app.js"}),
    "config": ("/playground/config.json", "/playground/{proxy+}", {"proxy": "config.json"}),
}


def write_playground_events() -> None:
    (HERE / "playground").mkdir(exist_ok=True)
    headers = {"accept": "text/html,application/xhtml+xml", "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    for name, (path, resource, parameters) in PLAYGROUND.items():
        event = make_event("GET", path, headers)
        event["resource"] = event["requestContext"]["resourcePath"] = resource
        event["pathParameters"] = parameters
        event["requestContext"]["path"] = f"/prod{path}"  # the browser's URL holds the stage
        event["requestContext"]["stage"] = "prod"
        event["requestContext"]["requestId"] = f"sample-playground-{name}"
        event["requestContext"]["requestTimeEpoch"] = 1764000000000
        (HERE / "playground" / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")


if __name__ == "__main__":
    main()
