"""The composition root: builds the services from settings, once per process (warm Lambdas reuse them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3

from .adapters.disk_reserve import DiskReserve
from .adapters.dynamodb_batch import DynamoDBBatchStore
from .adapters.dynamodb_keys import DynamoDBKeyStore
from .adapters.dynamodb_ratelimit import DynamoDBWindowCounter
from .adapters.dynamodb_store import DynamoDBStore
from .adapters.dynamodb_usage import DynamoDBUsageLedger
from .adapters.powertools_telemetry import PowertoolsTelemetry
from .adapters.s3_blobs import S3Blobs
from .auth import Authenticator, KeyStore
from .batchstore import BatchStore
from .blobs import SANDBOX_PREFIX, BlobStore
from .domain.agents import AgentService
from .domain.batch import BatchService
from .domain.conversations import ConversationService
from .domain.files import FileService
from .domain.housekeeping import recount_usage
from .domain.runtime import Runtime
from .domain.sessions import InterpreterSessions
from .http.edge import MCP_PATH, request_body_limit
from .jobqueue import JobQueue, QueueConsumer, SqsQueue
from .mcp.server import McpServer
from .providers.offline import OfflineModel
from .providers.port import ModelProvider
from .quota import StorageQuota, UsageLedger
from .ratelimit import RateLimiter, WindowCounter
from .sandbox.port import ExecutionRequest, ExecutionResult, Sandbox
from .settings import MISTRAL_PUBLIC_URL, Settings, get_settings, resolved_provider
from .store import Store


class DisabledSandbox:
    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        return ExecutionResult.unavailable("code execution is disabled on this server (SANDBOX_MODE=disabled)")


@dataclass
class Services:
    settings: Settings
    keys: Authenticator
    limiter: RateLimiter
    store: Store
    agents: AgentService
    conversations: ConversationService
    sandbox: Sandbox
    files: FileService
    batch: BatchService
    storage: Storage | None = None
    quota: StorageQuota | None = None
    mcp: McpServer | None = None


def build_sandbox(settings: Settings) -> Sandbox:
    if settings.sandbox_mode == "lambda":
        from .adapters.lambda_sandbox import LambdaSandbox, invoke_config

        return LambdaSandbox(boto3.client("lambda", config=invoke_config(settings.sandbox_timeout_s)),
                             settings.sandbox_function_name, presigner=sandbox_presigner(),
                             execution_timeout_s=settings.sandbox_timeout_s,
                             max_input_bytes=settings.sandbox_max_input_bytes)
    if settings.sandbox_mode == "local":
        from .adapters.local_sandbox import LocalSandbox, LocalSandboxConfig

        return LocalSandbox(LocalSandboxConfig(
            python=settings.sandbox_python, runner_dir=settings.sandbox_runner_dir, workers=settings.sandbox_workers,
            timeout_s=settings.sandbox_timeout_s, memory_mb=settings.sandbox_memory_mb,
            wait_s=settings.sandbox_wait_s, max_input_bytes=settings.sandbox_max_input_bytes,
            max_session_bytes=settings.session_max_bytes, cpus=settings.sandbox_worker_cpus,
        ))
    return DisabledSandbox()


def sandbox_presigner() -> Any:
    """An S3 client whose presigned URLs the sandbox can use: the bucket's regional,
    virtual-hosted name (what the S3 gateway endpoint routes), signed with SigV4."""
    from botocore.config import Config

    region = boto3.session.Session().region_name or "us-east-1"
    return boto3.client("s3", region_name=region, endpoint_url=f"https://s3.{region}.amazonaws.com",
                        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))


def provider_secret(settings: Settings) -> str | None:
    """The provider's API key from Secrets Manager (an ARN) or SSM Parameter Store (a name)."""
    reference = settings.model_api_key_secret
    if not reference:
        return None
    from aws_lambda_powertools.utilities import parameters

    if reference.startswith("arn:") and ":secretsmanager:" in reference:
        return api_key_from_secret(parameters.get_secret(reference))
    return api_key_from_secret(parameters.get_parameter(reference, decrypt=True))


SECRET_KEY_FIELDS = ("api_key", "apiKey", "key", "MISTRAL_API_KEY", "LLM_API_KEY")


def api_key_from_secret(value: str | bytes | None) -> str:
    """A plain-string secret is the key; a key/value secret (the Secrets Manager console's
    default) holds it under one of SECRET_KEY_FIELDS, or as its only value."""
    import json

    text = (value.decode() if isinstance(value, bytes) else str(value or "")).strip()
    if not text.startswith("{"):
        return text
    fields = json.loads(text)
    for name in SECRET_KEY_FIELDS:
        if isinstance(fields.get(name), str):
            return str(fields[name]).strip()
    values = [v for v in fields.values() if isinstance(v, str)]
    if len(values) == 1:
        return values[0].strip()
    raise ValueError(f"the model key secret is JSON without one of {SECRET_KEY_FIELDS} (fields: {sorted(fields)})")


def build_provider(settings: Settings) -> ModelProvider:
    kind = resolved_provider(settings)
    if kind == "mistral":
        from .providers.chat_http import MistralProvider

        return MistralProvider(settings.mistral_server_url or MISTRAL_PUBLIC_URL,
                               settings.mistral_api_key or provider_secret(settings),
                               timeout_s=settings.provider_timeout_s, max_retries=settings.provider_max_retries)
    if kind == "openai":
        from .providers.chat_http import OpenAICompatibleProvider

        if not settings.llm_base_url:
            raise ValueError("MODEL_PROVIDER=openai needs LLM_BASE_URL")
        return OpenAICompatibleProvider(settings.llm_base_url, settings.llm_api_key or provider_secret(settings),
                                        timeout_s=settings.provider_timeout_s, max_retries=settings.provider_max_retries)
    return OfflineModel()


@dataclass
class Storage:
    """Where everything lives, behind the ports: AWS (the Lambda functions) or embedded (one machine)."""

    store: Store
    blobs: BlobStore
    batch_store: BatchStore
    key_store: KeyStore
    rate_counter: WindowCounter
    queue: JobQueue  # where batch requests are sent
    ledger: UsageLedger  # bytes held per workspace (the storage quota)
    # The batch queue and its dead letters as the local poller consumes them; None where an
    # event source does (Lambda) or no queue is configured.
    consumers: tuple[QueueConsumer, QueueConsumer] | None = None
    # On one machine, what gives back the claims and deliveries of a server that died (only safe
    # for the one process that owns DATA_DIR); nothing in AWS, where leases and visibility do it.
    recovery: list[Callable[[], object]] = field(default_factory=list)
    # On one machine, the free disk kept under DATA_DIR; None where the storage is elastic.
    reserve: DiskReserve | None = None

    def recover(self) -> None:
        """After a crash: the dead server's batch requests run again now, once."""
        for step in self.recovery:
            step()

    def check_room_to_write(self) -> None:
        """507 insufficient_storage when the embedded store's disk is down to its reserve."""
        if self.reserve is not None:
            self.reserve.check_request()


def aws_storage(settings: Settings) -> Storage:
    store = DynamoDBStore(boto3.client("dynamodb"), settings.table_name)
    queue = SqsQueue(boto3.client("sqs"), settings.batch_queue_url or "")
    consumers = None
    if settings.batch_queue_url and settings.batch_dlq_url:
        consumers = (queue, SqsQueue(queue.client, settings.batch_dlq_url))
    return Storage(store=store, blobs=S3Blobs(boto3.client("s3"), settings.bucket_name),
                   batch_store=DynamoDBBatchStore(store.client, settings.table_name),
                   key_store=DynamoDBKeyStore(store.client, settings.table_name),
                   rate_counter=DynamoDBWindowCounter(store.client, settings.table_name),
                   queue=queue, consumers=consumers, ledger=DynamoDBUsageLedger(store.client, settings.table_name))


DATABASE_FILE = "agents.db"


def embedded_storage(settings: Settings) -> Storage:
    """SQLite and the file system under DATA_DIR: what `make serve` runs on."""
    from .adapters.file_blobs import FileBlobs, signing_key_at
    from .adapters.sqlite.batch import BATCH_MIGRATIONS, SqliteBatchStore
    from .adapters.sqlite.db import Database
    from .adapters.sqlite.keys import SqliteKeyStore
    from .adapters.sqlite.queue import SqliteQueue
    from .adapters.sqlite.ratelimit import SqliteWindowCounter
    from .adapters.sqlite.schema import STORE_MIGRATIONS
    from .adapters.sqlite.store import SqliteStore
    from .adapters.sqlite.usage import USAGE_MIGRATION, SqliteUsageLedger

    data_dir = Path(settings.data_dir)
    database = Database(data_dir / DATABASE_FILE, [*STORE_MIGRATIONS, *BATCH_MIGRATIONS, USAGE_MIGRATION])
    queue = SqliteQueue(database, "batch", visibility_timeout_s=settings.batch_lease_s,
                        max_receives=settings.batch_max_receives, dead_letter_queue="batch-dlq")
    dead_letters = SqliteQueue(database, "batch-dlq", visibility_timeout_s=settings.batch_lease_s)
    reserve = DiskReserve(data_dir, settings.data_dir_reserve_bytes)
    blobs = FileBlobs(data_dir / "blobs", signing_key_at(data_dir / "blob-signing.key"), settings.public_url,
                      reserve=reserve)
    batch_store = SqliteBatchStore(database)
    ledger = SqliteUsageLedger(database)
    return Storage(store=SqliteStore(database), blobs=blobs, batch_store=batch_store,
                   key_store=SqliteKeyStore(database), rate_counter=SqliteWindowCounter(database),
                   queue=queue, consumers=(queue, dead_letters), ledger=ledger, reserve=reserve,
                   recovery=[batch_store.release_abandoned_claims, queue.release_in_flight,
                             dead_letters.release_in_flight, blobs.clear_staging,
                             # executions' data in transit: none is in flight when a server starts
                             lambda: blobs.delete_prefix(SANDBOX_PREFIX),
                             # what a killed server charged and never wrote, or removed and never credited
                             lambda: recount_usage(StorageQuota(ledger, 0), blobs)])


def build_storage(settings: Settings) -> Storage:
    return embedded_storage(settings) if settings.storage == "sqlite" else aws_storage(settings)


def build_services(settings: Settings, sandbox: Sandbox | None = None, storage: Storage | None = None) -> Services:
    storage = storage or build_storage(settings)
    store, blobs = storage.store, storage.blobs
    agents = AgentService(store)
    quota = StorageQuota(storage.ledger, settings.storage_quota_bytes)
    files = FileService(store, blobs, settings.files_max_bytes, quota=quota)
    sandbox = sandbox or build_sandbox(settings)
    runtime = Runtime(build_provider(settings), sandbox, max_steps=settings.max_tool_steps, telemetry=PowertoolsTelemetry(),
                      turn_timeout_s=settings.turn_timeout_s, execution_timeout_s=settings.sandbox_timeout_s)
    conversations = ConversationService(store, agents, runtime, files=files, blobs=blobs,
                                        session_ttl_s=settings.session_ttl, max_input_entries=settings.max_input_entries,
                                        max_entries=settings.max_conversation_entries,
                                        max_entry_bytes=settings.max_entry_bytes, quota=quota)
    batch = BatchService(storage.batch_store, storage.queue, files, conversations, agents,
                         blobs=blobs, lease_s=settings.batch_lease_s, max_receives=settings.batch_max_receives,
                         max_json_depth=settings.max_json_depth)
    keys = Authenticator.from_settings(settings, storage.key_store)
    limiter = RateLimiter(storage.rate_counter, settings.rate_limit_per_minute)
    mcp = McpServer(InterpreterSessions(conversations, files, settings.mcp_read_max_bytes), files,
                    max_body_bytes=request_body_limit(settings, MCP_PATH), max_depth=settings.max_json_depth)
    return Services(settings, keys, limiter, store, agents, conversations, sandbox, files, batch, storage, quota, mcp)


_override: Services | None = None


def use_services(services: Services | None) -> None:
    """Install prebuilt services (the local server and tests share one sandbox pool this way)."""
    global _override
    _override = services
    get_services.cache_clear()


@lru_cache(maxsize=1)
def get_services() -> Services:
    return _override or build_services(get_settings())
