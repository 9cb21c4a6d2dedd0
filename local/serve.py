"""`make serve`: the whole service on one machine, no AWS account, no network.

A threaded HTTP front end turns each request into an API Gateway proxy event and calls the real
Lambda handler for its path. DynamoDB is moto, in-process; the sandbox is the local bubblewrap
worker pool; the model is the offline model unless a provider is configured. Streamed
conversation turns really stream (the handler hands its events to this server).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers"))

from local.apigw import function_for, invoke, web  # noqa: E402


def _defaults() -> None:
    """Embedded defaults for local use; anything already set in the environment wins."""
    os.environ.setdefault("SANDBOX_MODE", "local")
    os.environ.setdefault("AUTH_MODE", "auto")  # a development server: any bearer token, unless API_KEYS
    os.environ.setdefault("SANDBOX_RUNNER_DIR", str(ROOT / "sandbox_image"))
    os.environ.setdefault("TABLE_NAME", "agents-api-local")
    os.environ.setdefault("BUCKET_NAME", "agents-api-local")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agents-api")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AgentsApi")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


def start(host: str, port: int, warm: bool = True) -> tuple[Any, Any]:
    """Start moto, the services and the front end; returns the server (running in a thread)."""
    _defaults()
    from local.aws import create_bucket, create_queues, create_table, fake_credentials

    fake_credentials()
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    from agentsapi.services import build_services, use_services
    from agentsapi.settings import Settings

    queue_url, dlq_url = create_queues("agents-api-batch")
    os.environ.setdefault("BATCH_QUEUE_URL", queue_url)
    settings = Settings()
    create_table(settings.table_name)
    create_bucket(settings.bucket_name)
    services = build_services(settings)
    use_services(services)
    if warm and hasattr(services.sandbox, "warm_up"):
        try:
            hello = services.sandbox.warm_up()
            sys.stderr.write(f"sandbox ready: {json.dumps(hello.get('isolation'))} in {hello.get('startup_ms')} ms\n")
        except Exception as exc:  # noqa: BLE001 - serve the API anyway; executions will say why
            sys.stderr.write(f"WARNING: code execution unavailable: {exc}\n")
    def route(path: str) -> Any:
        function = function_for(path)
        return (lambda event: invoke(function, event)) if function else None

    server = web.FrontendServer((host, port), route)
    from local.batch_poller import QueuePoller

    QueuePoller(settings.batch_queue_url or queue_url, dlq_url).start()  # Lambda's SQS event source, locally
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    server, services = start(args.host, args.port)
    url = f"http://{args.host}:{server.server_address[1]}"
    from agentsapi.settings import resolved_provider

    provider = resolved_provider(services.settings)
    if provider == "mistral":
        provider += f" at {services.settings.mistral_server_url or 'https://api.mistral.ai'}"
    elif provider == "openai":
        provider += f"-compatible at {services.settings.llm_base_url}"
    keys = "any bearer token is accepted; each distinct token is its own workspace" if services.keys.open \
        else f"{len(services.keys.env_hashes)} API key(s) from API_KEYS, plus keys created in the table"
    per_minute = services.settings.rate_limit_per_minute
    limit = f"{per_minute} requests/minute per workspace" if per_minute else "none (RATE_LIMIT_PER_MINUTE)"
    print(f"""
Agents & Conversations API listening on {url}
  storage: DynamoDB (moto, in memory)   model: {provider}   sandbox: {services.settings.sandbox_mode}
  auth: {keys}   rate limit: {limit}

  from mistralai.client import Mistral
  client = Mistral(api_key="my-key", server_url="{url}")
  agent = client.beta.agents.create(model="mistral-medium-latest", name="calc", tools=[{{"type": "code_interpreter"}}])
  client.beta.conversations.start(agent_id=agent.id, inputs="```python\\nprint(6 * 7)\\n```")
""", flush=True)
    # SIGTERM (systemd, docker stop, a test) and Ctrl-C end the same way: stop taking requests,
    # then stop every sandbox worker, busy ones included, unmounting their work areas.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.shutdown()
        close = getattr(services.sandbox, "close", None)
        if close:
            close()


if __name__ == "__main__":
    main()
