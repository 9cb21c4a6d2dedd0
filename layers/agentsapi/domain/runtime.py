"""The conversation runtime: the model <-> tools loop of one turn.

The loop emits the API's stream events as it goes (``tool.execution.started``, deltas,
``message.output.delta``...) and builds the output entries from the same steps, so a streamed
turn and a buffered one can never disagree. Code runs only through the Sandbox port.
"""

from __future__ import annotations

import contextvars
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError
from ..limits import usable_file_name
from ..models.common import iso, new_id, now
from ..models.conversations import Usage
from ..models.entries import (
    AgentHandoffEntry,
    Entry,
    FunctionCallEntry,
    FunctionResultEntry,
    MessageInputEntry,
    MessageOutputEntry,
    TextChunk,
    ToolExecutionEntry,
    ToolFileChunk,
    content_text,
)
from ..models.tools import CodeInterpreterTool, CompletionArgs, FunctionTool, Tool
from ..providers.port import (
    CODE_INTERPRETER_SPEC,
    ModelMessage,
    ModelProvider,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageReport,
    estimate_tokens,
)
from ..sandbox.port import ExecutionRequest, ExecutionResult, Sandbox, SandboxFile, SessionState
from ..telemetry import NullTelemetry, Telemetry

CODE_INTERPRETER = "code_interpreter"
# What an execution's info tells of how it was isolated (the sandbox's report, and the adapter's).
ISOLATION_FIELDS = ("seccomp", "seccomp_probe", "require_seccomp", "non_dumpable", "tenant_isolation",
                    "worker_memory_limit_mb", "worker_cpu_shares", "worker_cpu_limit")

Event = dict[str, Any]


@dataclass(frozen=True)
class Persona:
    """Who answers: the settings of an agent version, or of a model conversation."""

    model: str
    instructions: str | None
    tools: list[Tool]
    completion_args: CompletionArgs
    agent_id: str | None = None
    agent_name: str = ""
    handoffs: tuple[HandoffTarget, ...] = ()

    def needs_confirmation(self, tool_name: str) -> bool:
        """``tool_configuration.requires_confirmation`` on any of the persona's tools names it."""
        for tool in self.tools:
            configuration = getattr(tool, "tool_configuration", None)
            if configuration is not None and tool_name in (configuration.requires_confirmation or []):
                return True
        return False


@dataclass(frozen=True)
class HandoffTarget:
    """An agent this persona may hand the conversation to, as the model sees it."""

    agent_id: str
    name: str
    description: str

    @property
    def tool_name(self) -> str:
        slug = re.sub(r"[^a-z0-9_]+", "_", self.name.lower()).strip("_")[:40] or "agent"
        return f"handoff_to_{slug}_{self.agent_id[-6:]}"


# Loads the persona of a handoff target (its active version). Supplied by the conversation service.
PersonaLoader = Callable[[str], Persona]

@dataclass
class ToolContext:
    """What code executions in this turn work with, supplied by the conversation service.

    ``state_key`` is the blob holding the interpreter session left by the latest execution (or
    None); ``save_state`` keeps a new one under the execution's entry id and returns its key;
    ``save_file`` stores a file the code wrote (inline or already in the blob store) under a
    name and returns its file id; ``discard`` drops what an execution handed over and the turn did
    not keep. ``blobs`` is where the keys live: inputs and outputs move by reference. ``workspace``
    is the caller's: the sandbox runs its code only where that workspace's code runs (None: the
    Lambda sandbox refuses).
    """

    input_files: list[SandboxFile] = field(default_factory=list)
    state_key: str | None = None
    save_state: Callable[[str, SessionState], str] | None = None
    save_file: Callable[[str, SandboxFile], str] | None = None
    discard: Callable[[str], None] | None = None
    blobs: Any = None
    notes: list[str] = field(default_factory=list)
    workspace: str | None = None
    # What the workspace may still store, asked before each execution (None: no quota).
    room: Callable[[], int | None] | None = None


@dataclass
class Turn:
    """What one turn produced. Filled in while its events are consumed."""

    outputs: list[Entry] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    pending_tool_call_ids: list[str] = field(default_factory=list)
    # Files the code wrote, shown as tool_file chunks in the next message.output.
    unshown_files: list[ToolFileChunk] = field(default_factory=list)
    context: ToolContext = field(default_factory=ToolContext)


def _keep_outputs(result: ExecutionResult, context: ToolContext, entry_id: str) -> tuple[str | None, list[ToolFileChunk]]:
    """Adopt what an execution handed back: the files the code wrote, as tool_file chunks, then
    its session state (the next execution, in this turn or the next, resumes from it). Files come
    first, as in the sandbox: when the storage quota has room for only some, what the user sees
    is kept before the state. What is refused is named in the output, never a failed turn."""
    files = []
    for number, produced in enumerate(result.files if context.save_file is not None else [], 1):
        # The code names its files: one that cannot name a stored file (bytes, control characters,
        # not UTF-8) is renamed, with a note, rather than failing the turn or leaving a blob behind.
        name, problem = usable_file_name(produced.name.rsplit("/", 1)[-1], f"output_{number}")
        if problem:
            result.notes.append(f"a file the code wrote has a name that {problem}; it was saved as {name!r}")
        try:
            file_id = context.save_file(name, produced)  # type: ignore[misc]
        except ApiError as refused:
            result.notes.append(f"the file {name!r} the code wrote was not kept: {refused.message}")
            continue
        files.append(ToolFileChunk(tool=CODE_INTERPRETER, file_id=file_id, file_name=name,
                                   file_type=name.rsplit(".", 1)[-1] if "." in name else None))
    session_ref = None
    if context.save_state is not None and result.session is not None:
        try:
            session_ref = context.save_state(entry_id, result.session)
            context.state_key = session_ref
        except ApiError as refused:  # e.g. the workspace's storage quota: the state before stays
            result.notes.append(f"the session state was not kept: {refused.message}")
    return session_ref, files


def history_to_messages(instructions: str | None, entries: list[Entry]) -> list[ModelMessage]:
    """Entries as the chat messages a model reads (tool executions become call + result)."""
    messages: list[ModelMessage] = []
    if instructions:
        messages.append(ModelMessage(role="system", content=instructions))
    for entry in entries:
        if isinstance(entry, MessageInputEntry):
            messages.append(ModelMessage(role=entry.role, content=content_text(entry.content)))
        elif isinstance(entry, MessageOutputEntry):
            messages.append(ModelMessage(role="assistant", content=content_text(entry.content)))
        elif isinstance(entry, ToolExecutionEntry):
            call_id = entry.tool_call_id or entry.id or "call"
            if not entry.tool_call_id:  # a confirmed call's request is its function.call entry
                messages.append(ModelMessage(role="assistant",
                                             tool_calls=(ToolCall(call_id, entry.name, entry.arguments),)))
            messages.append(ModelMessage(role="tool", tool_call_id=call_id, name=entry.name,
                                         content=str(entry.info.get("code_output", ""))))
        elif isinstance(entry, FunctionCallEntry):
            arguments = entry.arguments if isinstance(entry.arguments, str) else json.dumps(entry.arguments)
            messages.append(ModelMessage(role="assistant", tool_calls=(ToolCall(entry.tool_call_id, entry.name, arguments),)))
        elif isinstance(entry, FunctionResultEntry):
            messages.append(ModelMessage(role="tool", tool_call_id=entry.tool_call_id, content=entry.result))
    return messages


def tool_specs(tools: list[Tool]) -> list[ToolSpec]:
    specs = []
    for tool in tools:
        if isinstance(tool, CodeInterpreterTool):
            specs.append(CODE_INTERPRETER_SPEC)
        elif isinstance(tool, FunctionTool):
            specs.append(ToolSpec(tool.function.name, tool.function.description or "", tool.function.parameters))
    return specs


def pending_tool_calls(entries: list[Entry]) -> list[str]:
    """Function calls that have not had their result yet, in order."""
    answered = {e.tool_call_id for e in entries if isinstance(e, (FunctionResultEntry, ToolExecutionEntry))}
    return [e.tool_call_id for e in entries if isinstance(e, FunctionCallEntry) and e.tool_call_id not in answered]


def _event(kind: str, **fields: Any) -> Event:
    return {"type": kind, "created_at": iso(now()), **fields}


def _parse_code(arguments: str) -> str:
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments  # some models send the bare code
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        return value["code"]
    return arguments


# Least time a model call is started with: below it the turn ends with a note instead.
MODEL_CALL_MIN_S = 15.0
# What an execution needs beyond its own limit: the sandbox's start, the data's transfer, the answer.
EXECUTION_OVERHEAD_S = 30.0


@dataclass
class TurnClock:
    """A turn's time budget (TURN_TIMEOUT_S): it starts no model call or execution it could not
    finish, so that the function running it (900 s in AWS) always has time to store and answer."""

    budget_s: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def left(self) -> float:
        return self.budget_s - (self.clock() - self.started)


class Runtime:
    def __init__(self, provider: ModelProvider, sandbox: Sandbox, max_steps: int = 8,
                 telemetry: Telemetry | None = None, turn_timeout_s: float = 840.0,
                 execution_timeout_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.sandbox = sandbox
        self.max_steps = max_steps
        self.telemetry = telemetry or NullTelemetry()
        self.turn_timeout_s = turn_timeout_s
        self.execution_timeout_s = execution_timeout_s
        self.clock = clock

    def _out_of_time(self, persona: Persona, turn: Turn, why: str) -> Iterator[Event]:
        """End the turn with a note saying why (the model's last call answered, if it was a tool)."""
        note = MessageOutputEntry(id=new_id("msg_"), created_at=now(), completed_at=now(), model=persona.model,
                                  agent_id=persona.agent_id, content=f"[stopped: {why}]")
        yield _event("message.output.delta", id=note.id, output_index=len(turn.outputs), content_index=0,
                     content=note.content, model=persona.model, agent_id=persona.agent_id, role="assistant")
        turn.outputs.append(note)

    def run(self, persona: Persona, history: list[Entry], turn: Turn, handoff_execution: str = "server",
            load_persona: PersonaLoader | None = None,
            confirmations: Sequence[tuple[FunctionCallEntry, bool]] = (),
            context: ToolContext | None = None) -> Iterator[Event]:
        """Run one turn on ``history`` (which ends with the new inputs); yield stream events.

        ``confirmations`` answers calls that waited for the user: allowed ones run first, denied
        ones are reported to the model as refused; then the model continues.
        """
        entries = list(history)
        if context is not None:
            turn.context = context
        clock = TurnClock(self.turn_timeout_s, self.clock)
        for call_entry, allowed in confirmations:
            if allowed:
                call = {"entry_id": "", "arguments": call_entry.arguments if isinstance(call_entry.arguments, str)
                        else json.dumps(call_entry.arguments)}
                yield from self._execute(persona, call, turn, entries, answers=call_entry.tool_call_id)
            else:
                refusal = FunctionResultEntry(id=new_id("fr_"), created_at=now(), tool_call_id=call_entry.tool_call_id,
                                              result="The user denied this tool call; it was not run.")
                turn.outputs.append(refusal)
                entries.append(refusal)
        for _step in range(self.max_steps):
            if clock.left() < MODEL_CALL_MIN_S:
                yield from self._out_of_time(persona, turn, f"the turn used its time budget ({self.turn_timeout_s:g} s, "
                                                            "TURN_TIMEOUT_S); ask again to continue")
                return
            specs = tool_specs(persona.tools) + [
                ToolSpec(h.tool_name, f"Hand the conversation over to the agent {h.name!r}. {h.description}".strip(),
                         {"type": "object", "properties": {}}) for h in persona.handoffs]
            function_names = {t.function.name for t in persona.tools if isinstance(t, FunctionTool)}
            handoff_tools = {h.tool_name: h for h in persona.handoffs}
            completion_args = persona.completion_args.model_dump(mode="json", exclude_none=True, by_alias=True)
            request = ModelRequest(persona.model, history_to_messages(persona.instructions, entries), specs, completion_args)
            text_id: str | None = None
            text_parts: list[str] = []
            shown: list[ToolFileChunk] = []
            calls: dict[int, dict[str, str]] = {}
            started_at = now()
            model_started = time.monotonic()
            tokens = [0, 0]
            try:
                for delta in self.provider.stream(request):
                    if isinstance(delta, TextDelta) and delta.text:
                        if text_id is None:
                            text_id = new_id("msg_")
                            shown, turn.unshown_files = turn.unshown_files, []
                            for position, chunk in enumerate(shown):  # files first, as Mistral's answers show them
                                yield _event("message.output.delta", id=text_id, output_index=len(turn.outputs),
                                             content_index=position, content=chunk.model_dump(mode="json"),
                                             model=persona.model, agent_id=persona.agent_id, role="assistant")
                        text_parts.append(delta.text)
                        yield _event("message.output.delta", id=text_id, output_index=len(turn.outputs),
                                     content_index=len(shown), content=delta.text, model=persona.model,
                                     agent_id=persona.agent_id, role="assistant")
                    elif isinstance(delta, ToolCallDelta):
                        call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": "", "entry_id": ""})
                        call["id"] = delta.id or call["id"]
                        call["name"] = delta.name or call["name"]
                        call["arguments"] += delta.arguments
                        if call["name"] == CODE_INTERPRETER and not persona.needs_confirmation(CODE_INTERPRETER):
                            index = len(turn.outputs) + sorted(calls).index(delta.index) + (1 if text_id else 0)
                            if not call["entry_id"]:
                                call["entry_id"] = new_id("tool_exec_")
                                yield _event("tool.execution.started", id=call["entry_id"], output_index=index,
                                             name=CODE_INTERPRETER, arguments="", model=persona.model,
                                             agent_id=persona.agent_id)
                            if delta.arguments:
                                yield _event("tool.execution.delta", id=call["entry_id"], output_index=index,
                                             name=CODE_INTERPRETER, arguments=delta.arguments)
                    elif isinstance(delta, UsageReport):
                        turn.usage.add_model_call(delta.prompt_tokens, delta.completion_tokens)
                        tokens = [tokens[0] + delta.prompt_tokens, tokens[1] + delta.completion_tokens]
            except ApiError as exc:
                self.telemetry.model_error(persona.model, type(exc).__name__, exc.status)
                raise
            self.telemetry.model_call(persona.model, tokens[0], tokens[1], (time.monotonic() - model_started) * 1000)
            if text_id is not None:
                text = "".join(text_parts)
                content: str | list[Any] = [*shown, TextChunk(text=text)] if shown else text
                message = MessageOutputEntry(id=text_id, created_at=started_at, completed_at=now(),
                                             content=content, model=persona.model, agent_id=persona.agent_id)
                turn.outputs.append(message)
                entries.append(message)
            if not calls:
                return
            next_persona: Persona | None = None
            for index in sorted(calls):
                call = calls[index]
                if call["name"] in handoff_tools and next_persona is None and load_persona is not None:
                    target = handoff_tools[call["name"]]
                    next_persona = load_persona(target.agent_id)
                    yield from self._handoff(persona, target, turn, entries)
                elif call["name"] == CODE_INTERPRETER and persona.needs_confirmation(CODE_INTERPRETER):
                    yield from self._function_call(persona, call, turn, entries, confirmation="pending")
                elif call["name"] == CODE_INTERPRETER:
                    yield from self._execute(persona, call, turn, entries, clock=clock)
                elif call["name"] in function_names:
                    yield from self._function_call(persona, call, turn, entries)
                else:
                    # A tool the model invented: tell it, as a failed execution, and let it go on.
                    execution = ToolExecutionEntry(id=new_id("tool_exec_"), created_at=now(), completed_at=now(),
                                                   name=call["name"] or "unknown", arguments=call["arguments"],
                                                   info={"code_output": f"unknown tool {call['name']!r}"},
                                                   model=persona.model, agent_id=persona.agent_id)
                    turn.outputs.append(execution)
                    entries.append(execution)
            if turn.pending_tool_call_ids:
                return  # function calls end the turn: the client owes the results
            if next_persona is not None:
                if handoff_execution == "client":
                    return  # the client continues with the next agent itself
                persona = next_persona
        yield from self._out_of_time(persona, turn, f"the model used tools {self.max_steps} times in this turn "
                                                    "without answering; the step limit ends the turn here")

    def execute_code(self, persona: Persona, code: str, turn: Turn, entries: list[Entry],
                     context: ToolContext) -> Iterator[Event]:
        """One execution asked for by the caller, not by a model: recorded as the model's would be."""
        turn.context = context
        yield from self._execute(persona, {"entry_id": "", "arguments": json.dumps({"code": code})}, turn, list(entries))

    def _execute(self, persona: Persona, call: dict[str, str], turn: Turn, entries: list[Entry],
                 answers: str | None = None, clock: TurnClock | None = None) -> Iterator[Event]:
        entry_id = call["entry_id"] or new_id("tool_exec_")
        index = len(turn.outputs)
        started = now()
        code = _parse_code(call["arguments"])
        context = turn.context
        invoked = time.monotonic()
        if clock is not None and clock.left() < self.execution_timeout_s + EXECUTION_OVERHEAD_S:
            result = ExecutionResult(status="error", notes=[
                f"not run: the turn has {max(0.0, clock.left()):.0f} s of its time budget left (TURN_TIMEOUT_S), "
                f"less than an execution may take ({self.execution_timeout_s:g} s)"])
        else:
            # The cell's lines as it prints them (tool.execution.delta events with an ``output``
            # beside an empty ``arguments``: the SDKs, which ignore unknown fields, still parse
            # them); the result at its end. Closing this generator (the client went away) stops
            # the execution.
            live = self._run_code_live(code, context)
            try:
                while True:
                    try:
                        stream, text = next(live)
                    except StopIteration as finished:
                        result = finished.value
                        break
                    yield _event("tool.execution.delta", id=entry_id, output_index=index, name=CODE_INTERPRETER,
                                 arguments="", output={"stream": stream, "text": text})
            finally:
                live.close()
        self.telemetry.code_execution(result.status, (time.monotonic() - invoked) * 1000, result.duration_ms)
        try:
            session_ref, files = _keep_outputs(result, context, entry_id)
        finally:
            if result.exchange_prefix and context.discard is not None:
                context.discard(result.exchange_prefix)  # what the turn did not adopt
        turn.unshown_files.extend(files)
        result.notes[:0], context.notes = context.notes, []  # e.g. "session expired", once
        output = result.code_output()
        info = {"code": code, "code_output": output, "result": [{"type": "text", "text": output}],
                "status": result.status}
        isolation = {k: result.isolation[k] for k in ISOLATION_FIELDS if k in result.isolation}
        if isolation:
            info["isolation"] = isolation
        if files:
            info["files"] = [f.model_dump(mode="json", exclude={"type", "tool"}) for f in files]
        if result.table is not None and result.display is not None:
            # The display's text stays in code_output (the API's, the model's); ``text`` lets a
            # client show the table in its place.
            info["display_table"] = {**result.table.model_dump(mode="json"), "text": result.display}
        execution = ToolExecutionEntry(id=entry_id, created_at=started, completed_at=now(), name=CODE_INTERPRETER,
                                       function=CODE_INTERPRETER, arguments=json.dumps({"code": code}), info=info,
                                       model=persona.model, agent_id=persona.agent_id, tool_call_id=answers,
                                       session_ref=session_ref)
        turn.usage.add_connector_call(CODE_INTERPRETER, estimate_tokens(output))
        turn.outputs.append(execution)
        entries.append(execution)
        yield _event("tool.execution.done", id=entry_id, output_index=index, name=CODE_INTERPRETER,
                     function=CODE_INTERPRETER, info=info)

    def _run_code_live(self, code: str, context: ToolContext) -> Generator[tuple[str, str], None, ExecutionResult]:
        """Runs the execution on a thread of its own; yields (stream, text) as the cell prints,
        returns its result. Closed early, it cancels the execution and waits for it to stop."""
        lines: queue.Queue[tuple[str, str] | None] = queue.Queue()
        cancelled = threading.Event()
        outcome: dict[str, Any] = {}
        request = ExecutionRequest(code=code, files=context.input_files, carry_session=context.save_state is not None,
                                   session_key=context.state_key, tenant=context.workspace, blobs=context.blobs,
                                   room_bytes=context.room() if context.room else None,
                                   on_output=lambda stream, text: lines.put((stream, text)), cancelled=cancelled)

        def discard(result: ExecutionResult | None) -> None:
            # What a cancelled run handed back: no turn adopts it (idempotent).
            if result is not None and result.exchange_prefix and context.discard is not None:
                context.discard(result.exchange_prefix)

        def run() -> None:
            try:
                outcome["result"] = self.sandbox.execute(request)
                if cancelled.is_set():  # it ended after the caller had gone
                    discard(outcome["result"])
            except BaseException as exc:  # noqa: BLE001 - raised again on the turn's thread
                outcome["error"] = exc
            finally:
                lines.put(None)

        worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True,
                                  name="execution")
        worker.start()
        finished = False
        try:
            while (line := lines.get()) is not None:
                yield line
            finished = True
        finally:
            if not finished:  # closed before the end: stop the cell (adapters that can), wait a while
                cancelled.set()
                worker.join(timeout=EXECUTION_OVERHEAD_S)
                discard(outcome.get("result"))
        worker.join()  # its last step after the end-of-lines mark
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]  # type: ignore[no-any-return]

    def _handoff(self, persona: Persona, target: HandoffTarget, turn: Turn, entries: list[Entry]) -> Iterator[Event]:
        entry = AgentHandoffEntry(id=new_id("handoff_"), created_at=now(), completed_at=now(),
                                  previous_agent_id=persona.agent_id or "", previous_agent_name=persona.agent_name,
                                  next_agent_id=target.agent_id, next_agent_name=target.name)
        index = len(turn.outputs)
        yield _event("agent.handoff.started", id=entry.id, output_index=index,
                     previous_agent_id=entry.previous_agent_id, previous_agent_name=entry.previous_agent_name)
        yield _event("agent.handoff.done", id=entry.id, output_index=index, next_agent_id=entry.next_agent_id,
                     next_agent_name=entry.next_agent_name)
        turn.outputs.append(entry)
        entries.append(entry)

    def _function_call(self, persona: Persona, call: dict[str, str], turn: Turn, entries: list[Entry],
                       confirmation: str | None = None) -> Iterator[Event]:
        entry = FunctionCallEntry(id=new_id("fc_"), created_at=now(), completed_at=now(),
                                  tool_call_id=call["id"] or new_id("")[-9:], name=call["name"],
                                  arguments=call["arguments"], model=persona.model, agent_id=persona.agent_id,
                                  confirmation_status=confirmation)
        event = _event("function.call.delta", id=entry.id, output_index=len(turn.outputs), name=entry.name,
                       tool_call_id=entry.tool_call_id, arguments=entry.arguments, model=persona.model,
                       agent_id=persona.agent_id)
        if confirmation:
            event["confirmation_status"] = confirmation
        yield event
        turn.outputs.append(entry)
        entries.append(entry)
        turn.pending_tool_call_ids.append(entry.tool_call_id)
