"""`make serve`: the whole service on one machine, no AWS account, no network.

A threaded HTTP front end turns each request into an API Gateway proxy event and calls the real
Lambda handler for its path. Storage is embedded by default (STORAGE=sqlite: a SQLite database
and a blob directory under DATA_DIR, kept across restarts and crashes); STORAGE=aws uses the
DynamoDB/S3/SQS adapters against whatever endpoint boto3 is configured for. The sandbox is the
local bubblewrap worker pool; the model is the offline model unless a provider is configured.
Streamed conversation turns really stream (the handler hands its events to this server).
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
    os.environ.setdefault("STORAGE", "sqlite")
    os.environ.setdefault("DATA_DIR", str(ROOT / ".data"))
    os.environ.setdefault("SANDBOX_MODE", "local")
    os.environ.setdefault("SANDBOX_WORKERS", str(default_workers()))
    os.environ.setdefault("SANDBOX_WORKER_CPUS", f"{default_worker_cpus(int(os.environ['SANDBOX_WORKERS'])):g}")
    os.environ.setdefault("AUTH_MODE", "auto")  # a development server: any bearer token, unless API_KEYS
    if os.environ["AUTH_MODE"] == "open" or (os.environ["AUTH_MODE"] == "auto" and not os.environ.get("API_KEYS")):
        # Where any bearer token is a workspace, a limit per workspace no person at a keyboard meets
        # (20 requests a second, sustained for a minute), so that one script cannot take the server.
        os.environ.setdefault("RATE_LIMIT_PER_MINUTE", str(OPEN_MODE_RATE_LIMIT))
    os.environ.setdefault("SANDBOX_RUNNER_DIR", str(ROOT / "sandbox_image"))
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "agents-api")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AgentsApi")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


OPEN_MODE_RATE_LIMIT = 1200
HOUSEKEEPING_INTERVAL_S = 3600.0


def default_workers() -> int:
    """One sandbox worker per core, at least two: an execution is CPU work, and a second worker
    keeps one tenant's long cell from holding up everyone else's."""
    return max(2, os.cpu_count() or 1)


def default_worker_cpus(workers: int) -> float:
    """The machine's cores shared out among the workers, at least one each: however many
    processes a cell starts, its worker never takes another's core (cells run single-threaded
    numerics by default, so one core costs them nothing)."""
    return max(1.0, (os.cpu_count() or 1) / max(1, workers))


class DataDirInUse(RuntimeError):
    pass


def lock_data_dir(data_dir: Path) -> Any:
    """One server per DATA_DIR: on start-up it takes back whatever a crashed server had claimed,
    which is only safe when no other server is working on the same files."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / ".lock", "a+")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DataDirInUse(f"{data_dir} is in use by another server; stop it or choose another DATA_DIR") from None
    return handle


def raise_open_files_limit() -> int:
    """Every connection holds a descriptor (and a thread): take the hard limit, not the common
    1,024 soft one, so that a crowd of idle connections cannot lock everyone else out before
    the idle timeout closes them. Returns the limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def start(host: str, port: int, warm: bool = True) -> tuple[Any, Any]:
    """Start the services and the front end; returns the server (running in a thread)."""
    _defaults()
    raise_open_files_limit()
    os.environ.setdefault("PUBLIC_URL", f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}")  # noqa: S104
    from agentsapi.services import build_services, use_services
    from agentsapi.settings import Settings, resolved_provider

    settings = Settings()
    lock = lock_data_dir(Path(settings.data_dir)) if settings.storage == "sqlite" else None
    services = build_services(settings)
    services.lock = lock
    try:
        stream_url, cors = front_end_settings(keys_open=services.keys.open)
    except ConfigError:
        close = getattr(services.sandbox, "close", None)
        if close:
            close()
        raise
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

    blobs = services.storage.blobs
    raw_routes = [playground(keys_required=not services.keys.open, stream_url=stream_url,
                             model_provider=resolved_provider(settings)),
                  signed_blobs(blobs, notify=services.files.uploads.object_created)]
    server = web.FrontendServer((host, port), route, raw_route=first_answer(*raw_routes),
                                stager=upload_stager(blobs, lambda: services.files.max_bytes, services.keys.authenticate),
                                cors=cors, gateway=gateway_rules())
    storage = services.storage
    if storage.consumers is not None:
        from local.batch_poller import QueuePoller

        storage.recover()  # this process owns DATA_DIR: what a crashed one had claimed runs again
        services.poller = QueuePoller(*storage.consumers).start()  # Lambda's SQS event source, locally
    if settings.storage == "sqlite":
        services.housekeeper = Housekeeper(services).start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, services


def gateway_rules() -> Any:
    """API Gateway's behaviour per route, as template.yaml configures it (buffered integrations
    time out, streamed ones stream), unless APIGW_EMULATION=0."""
    if os.environ.get("APIGW_EMULATION", "1") == "0":
        return None
    from agentsapi.http.gateway import GatewayRules
    from local.aws import load_template

    return GatewayRules.from_template(load_template())


class Housekeeper:
    """What S3's lifecycle rules do in AWS, on one machine: every hour, session states past
    their TTL are removed (and their bytes given back to the workspace's quota)."""

    def __init__(self, services: Any, interval_s: float = HOUSEKEEPING_INTERVAL_S) -> None:
        self.services = services
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def start(self) -> Housekeeper:
        threading.Thread(target=self._run, name="housekeeping", daemon=True).start()
        return self

    def run_once(self) -> int:
        from agentsapi.domain.housekeeping import expire_files, expire_sessions

        services = self.services
        expire_files(services.files, services.storage.blobs)
        return expire_sessions(services.storage.blobs, services.quota, services.settings.session_ttl)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                sys.stderr.write(f"housekeeping failed: {exc!r}\n")

    def stop(self) -> None:
        self.stopped.set()


class ConfigError(Exception):
    """A setting `make serve` cannot serve as given: it stops with the reason."""


def front_end_settings(keys_open: bool) -> tuple[str | None, web.Cors | None]:
    """Where the playground streams from (PLAYGROUND_STREAM_URL) and which other origins' pages
    may call the API (CORS_ALLOW_ORIGINS), checked before anything is served."""
    from local.apigw import playground_site

    try:
        stream_url = playground_site.stream_url_from_env()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cors = web.Cors.from_env()
    if cors is not None and "*" in cors.origins and keys_open:
        raise ConfigError("CORS_ALLOW_ORIGINS=* while any bearer token is accepted (AUTH_MODE=open, or auto "
                          "without API_KEYS) would let any web page you visit use this server and read its "
                          "data: name the origins that may, or set API_KEYS")
    return stream_url, cors


def playground(keys_required: bool, stream_url: str | None = None, model_provider: str = "offline") -> Any:
    """The browser playground at /playground/ (and / redirecting there): the same files and headers
    as its Lambda function in AWS (functions/playground/static_site.py)."""
    from local.apigw import playground_site

    def answer(method: str, path: str, query: str) -> Any:
        found = playground_site.answer(method, path, keys_required, stream_url=stream_url,
                                       model_provider=model_provider)
        return None if found is None else (found.status, found.headers, [found.body])

    return answer


def first_answer(*routes: Any) -> Any:
    """One raw route made of several: the first that answers a request wins."""
    present = [r for r in routes if r is not None]

    def answer(method: str, path: str, query: str) -> Any:
        for route in present:
            found = route(method, path, query)
            if found is not None:
                return found
        return None

    return answer


def signed_blobs(blobs: Any, notify: Any = None) -> Any:
    """Locally, the presigned downloads and uploads S3 would serve (only when blobs live on the file
    system); ``notify(key)`` after an upload stands for S3's ObjectCreated notification."""
    from agentsapi.adapters.file_blobs import SIGNED_PATH, FileBlobs

    if not isinstance(blobs, FileBlobs):
        return None
    from local.blob_route import receive_signed_post, serve_signed_blob

    def answer(method: str, path: str, query: str) -> Any:
        if method in ("GET", "HEAD") and path.startswith(SIGNED_PATH):
            return serve_signed_blob(blobs, path, query)
        if method == "POST" and path == SIGNED_PATH:
            return lambda body: receive_signed_post(blobs, body, notify)
        return None

    return answer


def upload_stager(blobs: Any, max_file_bytes: Any, authenticate: Any = None) -> Any:
    """Large uploads streamed to a staging file (only when blobs live on the file system), from
    callers with a valid key."""
    from agentsapi.adapters.file_blobs import FileBlobs

    if not isinstance(blobs, FileBlobs):
        return None
    from local.upload_stage import upload_stager as stager

    return stager(blobs, max_file_bytes, authenticate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    from agentsapi.adapters.sqlite.db import DataDirError

    try:
        server, services = start(args.host, args.port)
    except (DataDirError, DataDirInUse, ConfigError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
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
    storage = f"SQLite + files in {services.settings.data_dir}" if services.settings.storage == "sqlite" \
        else "AWS (DynamoDB, S3, SQS)"
    limit = f"{per_minute} requests/minute per workspace" if per_minute else "none (RATE_LIMIT_PER_MINUTE)"
    print(f"""
Agents & Conversations API listening on {url}
  storage: {storage}   model: {provider}   sandbox: {services.settings.sandbox_mode} ({services.settings.sandbox_workers} workers)
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
        for background in (getattr(services, "poller", None), getattr(services, "housekeeper", None)):
            if background is not None:
                background.stop()
        close = getattr(services.sandbox, "close", None)
        if close:
            close()


if __name__ == "__main__":
    main()
