"""Settings, read once from the environment (pydantic-settings). Logic never reads os.environ."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # Where agents, conversations, files, sessions, batches and keys live: "aws" (DynamoDB, S3,
    # SQS: the Lambda functions, or any endpoint boto3 is configured for) or "sqlite" (one
    # machine: a SQLite database and a blob directory under DATA_DIR; `make serve`'s default).
    storage: Literal["aws", "sqlite"] = Field("aws", alias="STORAGE")
    data_dir: str = Field(".data", alias="DATA_DIR")
    # The address clients reach this server at (signed download URLs locally).
    public_url: str = Field("http://127.0.0.1:8080", alias="PUBLIC_URL")
    table_name: str = Field("agents-api", alias="TABLE_NAME")
    bucket_name: str = Field("agents-api-files", alias="BUCKET_NAME")
    # The largest file, as Mistral's Files API takes. Through API Gateway a direct upload carries at
    # most payloads.DIRECT_UPLOAD_MAX_BYTES; larger files go through a signed upload (POST /v1/files/uploads).
    files_max_bytes: int = Field(512 * 1024 * 1024, alias="FILES_MAX_BYTES", gt=0)
    session_ttl_s: int = Field(7 * 24 * 3600, alias="SESSION_TTL_S", gt=0)
    # Bytes one workspace may hold (files, code outputs, session states, batch files); 0 = no
    # limit. Over it: 507 storage_quota_exceeded, and a code output or state is not kept.
    storage_quota_bytes: int = Field(10 * 1024**3, alias="STORAGE_QUOTA_BYTES", ge=0)
    # STORAGE=sqlite: the free disk kept under DATA_DIR so that reads and deletes always work;
    # writes that would eat into it get 507 insufficient_storage. 0 = none.
    data_dir_reserve_bytes: int = Field(256 * 1024**2, alias="DATA_DIR_RESERVE_BYTES", ge=0)
    batch_queue_url: str | None = Field(None, alias="BATCH_QUEUE_URL")
    # Only for `make serve` with STORAGE=aws: the dead-letter queue its local poller drains.
    batch_dlq_url: str | None = Field(None, alias="BATCH_DLQ_URL")
    # How long a claimed batch request is protected from redeliveries: above the worker's timeout.
    batch_lease_s: int = Field(900, alias="BATCH_LEASE_S", gt=0)
    batch_max_receives: int = Field(5, alias="BATCH_MAX_RECEIVES", ge=1)
    # In AWS the TTL is set in days, matching the bucket's lifecycle rule; it wins when set.
    session_ttl_days: int | None = Field(None, alias="SESSION_TTL_DAYS", gt=0)

    @property
    def session_ttl(self) -> int:
        return self.session_ttl_days * 86400 if self.session_ttl_days else self.session_ttl_s
    # Keys live hashed in the table (cli/api_key.py). API_KEYS adds comma-separated keys from the
    # environment (local use). AUTH_MODE: keys = only those; open = any other bearer token is its
    # own workspace too; auto = open unless API_KEYS is set. The default is keys (fail closed);
    # `make serve` and the tests choose auto.
    api_keys: str | None = Field(None, alias="API_KEYS")
    auth_mode: Literal["auto", "open", "keys"] = Field("keys", alias="AUTH_MODE")  # fail closed
    auth_cache_ttl_s: float = Field(60.0, alias="AUTH_CACHE_TTL_S", ge=0)
    # Requests per minute per workspace (a key's own limit wins); 0 = unlimited.
    rate_limit_per_minute: int = Field(0, alias="RATE_LIMIT_PER_MINUTE", ge=0)
    # auto: Mistral if MISTRAL_API_KEY or MISTRAL_SERVER_URL is set, else an OpenAI-compatible
    # server if LLM_BASE_URL is set, else the offline model.
    model_provider: Literal["auto", "offline", "mistral", "openai"] = Field("auto", alias="MODEL_PROVIDER")
    mistral_api_key: str | None = Field(None, alias="MISTRAL_API_KEY")
    mistral_server_url: str | None = Field(None, alias="MISTRAL_SERVER_URL")
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL")
    llm_api_key: str | None = Field(None, alias="LLM_API_KEY")
    # Where a deployed stack keeps the provider's key: a Secrets Manager secret ARN, or the name
    # of an SSM SecureString parameter ("/..."). Read once per cold start; a key given directly
    # (MISTRAL_API_KEY / LLM_API_KEY) wins.
    model_api_key_secret: str | None = Field(None, alias="MODEL_API_KEY_SECRET")
    provider_timeout_s: float = Field(120.0, alias="PROVIDER_TIMEOUT_S", gt=0)
    provider_max_retries: int = Field(3, alias="PROVIDER_MAX_RETRIES", ge=0, le=10)
    max_tool_steps: int = Field(8, alias="MAX_TOOL_STEPS", ge=1, le=40)
    # A turn's own time budget: it starts no model call or execution it could not finish within
    # it, so that the function running it has time to store the turn and answer (template.yaml
    # sets it from SandboxTimeoutSeconds, below the conversation functions' 900 s).
    turn_timeout_s: float = Field(840.0, alias="TURN_TIMEOUT_S", gt=0, le=3600)
    max_request_bytes: int = Field(1024 * 1024, alias="MAX_REQUEST_BYTES")
    # Bounds on client input, refused with a 4xx naming the field before anything is stored.
    # Nesting stays well below the 200 levels pydantic's JSON parser reads back from storage.
    max_json_depth: int = Field(64, alias="MAX_JSON_DEPTH", ge=8, le=128)
    # The largest file the MCP server's read_file (and resources/read) returns inline: its base64
    # must fit in a Lambda response (payloads.LAMBDA_RESPONSE_BYTES); larger ones are downloaded.
    mcp_read_max_bytes: int = Field(3 * 1024 * 1024, alias="MCP_READ_MAX_BYTES", gt=0, le=4_500_000)
    max_input_entries: int = Field(200, alias="MAX_INPUT_ENTRIES", ge=1, le=10_000)
    max_conversation_entries: int = Field(5000, alias="MAX_CONVERSATION_ENTRIES", ge=2, le=100_000)
    # One entry is stored as one item; DynamoDB's items stop at 400 KB (keys and names included).
    max_entry_bytes: int = Field(300_000, alias="MAX_ENTRY_BYTES", ge=1024, le=380_000)

    sandbox_mode: Literal["local", "lambda", "disabled"] = Field("lambda", alias="SANDBOX_MODE")
    sandbox_function_name: str = Field("agents-api-tenant-sandbox", alias="SANDBOX_FUNCTION_NAME")
    sandbox_python: str = Field("/opt/agents-sandbox/venv/bin/python", alias="SANDBOX_PYTHON")
    sandbox_runner_dir: str = Field("sandbox_image", alias="SANDBOX_RUNNER_DIR")
    sandbox_workers: int = Field(2, alias="SANDBOX_WORKERS", ge=1, le=16)
    sandbox_timeout_s: float = Field(30.0, alias="SANDBOX_TIMEOUT_S", gt=0, le=600)
    sandbox_memory_mb: int = Field(1024, alias="SANDBOX_MEMORY_MB", ge=128)
    # The files and session state one execution may take in (they travel by reference).
    sandbox_max_input_bytes: int = Field(1024 * 1024 * 1024, alias="SANDBOX_MAX_INPUT_BYTES", gt=0)
    # An interpreter session's state (variables, files the code wrote), carried between executions.
    session_max_bytes: int = Field(256 * 1024 * 1024, alias="SESSION_MAX_BYTES", gt=0)
    # Locally: how long a turn waits for a free sandbox worker before a 503 with Retry-After.
    sandbox_wait_s: float = Field(10.0, alias="SANDBOX_WAIT_S", gt=0, le=600)
    # Locally: the most CPUs one worker may use (a cgroup CFS quota); 0 = no cap, only an equal
    # share of the machine whenever workers compete (every worker has the same cgroup weight).
    sandbox_worker_cpus: float = Field(0.0, alias="SANDBOX_WORKER_CPUS", ge=0, le=64)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


MISTRAL_PUBLIC_URL = "https://api.mistral.ai"


def resolved_provider(settings: Settings) -> str:
    if settings.model_provider != "auto":
        return settings.model_provider
    if settings.mistral_api_key or settings.mistral_server_url:
        return "mistral"
    if settings.llm_base_url:
        return "openai"
    return "offline"
