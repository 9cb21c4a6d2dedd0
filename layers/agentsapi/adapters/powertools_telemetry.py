"""Telemetry as Powertools metrics (CloudWatch EMF, namespace POWERTOOLS_METRICS_NAMESPACE) and
INFO log lines. Metric names, all with the ``service`` dimension only, so alarms can name them:

- ``CodeExecutions`` and one of ``CodeExecutionsOk|Error|Timeout|Memory|Failed`` per execution,
- ``CodeExecutionLatency`` (ms, as the API saw it, invoke included) and ``SandboxRunTime`` (ms),
- ``ModelCalls``, ``PromptTokens``, ``CompletionTokens``, ``ModelLatency`` (ms, the whole
  streamed answer), ``ModelErrors`` (the provider failed after its retries).

Metrics instances share one buffer per process, which the function's ``@metrics.log_metrics``
flushes at the end of the invocation (the streaming front end flushes after the stream).
The log lines carry numbers and statuses only: never code, code output or inputs.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ..telemetry import outcome_of


class PowertoolsTelemetry:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.logger = Logger(child=True)

    def code_execution(self, status: str, latency_ms: float, sandbox_ms: float) -> None:
        outcome = outcome_of(status)
        self.metrics.add_metric(name="CodeExecutions", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name=f"CodeExecutions{outcome.title()}", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="CodeExecutionLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        self.metrics.add_metric(name="SandboxRunTime", unit=MetricUnit.Milliseconds, value=sandbox_ms)
        self.logger.info("code execution", extra={"outcome": outcome, "status": status,
                                                  "latency_ms": round(latency_ms, 1), "sandbox_ms": round(sandbox_ms, 1)})

    def model_call(self, model: str, prompt_tokens: int, completion_tokens: int, latency_ms: float) -> None:
        self.metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="PromptTokens", unit=MetricUnit.Count, value=prompt_tokens)
        self.metrics.add_metric(name="CompletionTokens", unit=MetricUnit.Count, value=completion_tokens)
        self.metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        self.logger.info("model call", extra={"model": model, "prompt_tokens": prompt_tokens,
                                              "completion_tokens": completion_tokens, "latency_ms": round(latency_ms, 1)})

    def model_error(self, model: str, error_type: str, status: int) -> None:
        self.metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=1)
        self.logger.warning("model call failed", extra={"model": model, "error_type": error_type, "status": status})
