"""The composition root: builds the services from settings, once per process (warm Lambdas reuse them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import boto3

from .adapters.dynamodb_store import DynamoDBStore
from .auth import KeyRing
from .domain.agents import AgentService
from .domain.conversations import ConversationService
from .domain.runtime import Runtime
from .providers.offline import OfflineModel
from .providers.port import ModelProvider
from .sandbox.port import ExecutionRequest, ExecutionResult, Sandbox
from .settings import Settings, get_settings


class DisabledSandbox:
    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        return ExecutionResult.unavailable("code execution is disabled on this server (SANDBOX_MODE=disabled)")


@dataclass
class Services:
    settings: Settings
    keys: KeyRing
    store: DynamoDBStore
    agents: AgentService
    conversations: ConversationService
    sandbox: Sandbox


def build_sandbox(settings: Settings) -> Sandbox:
    if settings.sandbox_mode == "lambda":
        from .adapters.lambda_sandbox import LambdaSandbox

        return LambdaSandbox(boto3.client("lambda"), settings.sandbox_function_name)
    if settings.sandbox_mode == "local":
        from .adapters.local_sandbox import LocalSandbox, LocalSandboxConfig

        return LocalSandbox(LocalSandboxConfig(
            python=settings.sandbox_python, runner_dir=settings.sandbox_runner_dir, workers=settings.sandbox_workers,
            timeout_s=settings.sandbox_timeout_s, memory_mb=settings.sandbox_memory_mb,
        ))
    return DisabledSandbox()


def build_provider(settings: Settings) -> ModelProvider:
    return OfflineModel()


def build_services(settings: Settings, sandbox: Sandbox | None = None) -> Services:
    store = DynamoDBStore(boto3.client("dynamodb"), settings.table_name)
    agents = AgentService(store)
    sandbox = sandbox or build_sandbox(settings)
    runtime = Runtime(build_provider(settings), sandbox, max_steps=settings.max_tool_steps)
    return Services(settings, KeyRing(settings.api_keys), store, agents, ConversationService(store, agents, runtime), sandbox)


_override: Services | None = None


def use_services(services: Services | None) -> None:
    """Install prebuilt services (the local server and tests share one sandbox pool this way)."""
    global _override
    _override = services
    get_services.cache_clear()


@lru_cache(maxsize=1)
def get_services() -> Services:
    return _override or build_services(get_settings())
