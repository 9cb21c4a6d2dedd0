"""Conversations: start, append, restart, and the read side (list, get, history, messages).

A turn is a generator of stream events. The buffered API consumes it and answers with the
outputs; the streaming API forwards the events. Either way the turn is stored (one conditional
transaction) before ``conversation.response.done`` is emitted, or not at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..blobs import SANDBOX_PREFIX, BlobStore, file_key, is_own_session, session_key, session_prefix
from ..errors import (
    ApiError,
    FunctionResultsMissing,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    ValidationFailed,
)
from ..limits import file_name_problem
from ..models.common import iso, new_id, now
from ..models.conversations import (
    AppendConversationRequest,
    Conversation,
    RestartConversationRequest,
    StartConversationRequest,
    ToolConfirmation,
)
from ..models.entries import (
    ENTRY_ID_PREFIX,
    AgentHandoffEntry,
    Entry,
    FileChunk,
    FunctionCallEntry,
    FunctionResultEntry,
    MessageInputEntry,
    MessageOutputEntry,
    StoredEntry,
    ToolExecutionEntry,
    ToolFileChunk,
    entry_to_api,
)
from ..models.tools import CodeInterpreterTool
from ..quota import SESSIONS, StorageQuota
from ..sandbox.port import SandboxFile, SessionState
from ..store import Store
from .agents import AgentService
from .files import FileService
from .metadata import metadata_matches
from .paging import offset_page
from .runtime import CODE_INTERPRETER, Event, HandoffTarget, Persona, Runtime, ToolContext, Turn, pending_tool_calls

# What an entry keeps beside a run's code: its output (capped at 100 kB by the sandbox) and notes.
RUN_OUTPUT_ROOM_BYTES = 110_000
# The model a session started without one (an MCP client's) names, should a person chat in it later.
SESSION_MODEL = "mistral-medium-latest"

# Stands in, in a restarted history, for a session reference its source did not own, or that
# the workspace's storage quota had no room to copy.
REFUSED_SESSION = "refused:not-this-conversation's"
OVER_QUOTA_SESSION = "refused:over-the-storage-quota"


@dataclass
class Kept:
    """What a turn stored as it ran (session states, files the code wrote), so that a turn that
    fails or is cancelled before it is saved leaves none of it behind."""

    sessions: list[tuple[str, int]] = field(default_factory=list)  # (blob key, bytes)
    files: list[str] = field(default_factory=list)  # file ids


@dataclass
class TurnResult:
    """A started turn: its conversation id, and the events still to be produced."""

    conversation_id: str
    events: Iterator[Event]
    turn: Turn
    error: ApiError | None = None

    def buffered(self) -> dict[str, Any]:
        """Run the turn to the end and answer as the non-streaming API does."""
        for _ in self.events:
            pass
        if self.error is not None:
            raise self.error
        return {"object": "conversation.response", "conversation_id": self.conversation_id,
                "outputs": [entry_to_api(e) for e in self.turn.outputs], "usage": self.turn.usage.to_api(),
                "guardrails": None}


def _stamp(entries: list[Entry]) -> list[Entry]:
    """Give client-sent entries the ids and timestamps every stored entry has."""
    stamped = []
    moment = now()
    for entry in entries:
        updates: dict[str, Any] = {}
        if not entry.id:
            updates["id"] = new_id(ENTRY_ID_PREFIX[entry.type])
        if entry.created_at is None:
            updates["created_at"] = moment
        stamped.append(entry.model_copy(update=updates) if updates else entry)
    return stamped


def _inputs(inputs: str | list[Entry] | None) -> list[Entry]:
    if inputs is None:
        return []
    if isinstance(inputs, str):
        return _stamp([MessageInputEntry(role="user", content=inputs)])
    return _stamp(list(inputs))


def _confirmations(history: list[Entry], given: list[ToolConfirmation]) -> list[tuple[FunctionCallEntry, bool]]:
    """Match tool_confirmations to the calls waiting for one; anything else is a clear 400."""
    owed = pending_tool_calls(history)
    waiting = {e.tool_call_id: e for e in history
               if isinstance(e, FunctionCallEntry) and e.confirmation_status == "pending" and e.tool_call_id in owed}
    matched = []
    for confirmation in given:
        call = waiting.pop(confirmation.tool_call_id, None)
        if call is None:
            raise InvalidRequest(f"tool_confirmations: no tool call {confirmation.tool_call_id!r} is waiting for a "
                                 "confirmation", param="tool_confirmations")
        matched.append((call, confirmation.confirmation == "allow"))
    return matched


def _check_owed_results(pending: list[str], inputs: list[Entry]) -> None:
    """Mistral's rule: while function results are owed, only those results may be appended."""
    given = {e.tool_call_id for e in inputs if isinstance(e, FunctionResultEntry)}
    unknown = given - set(pending)
    if unknown:
        raise InvalidRequest(f"inputs: no function call is waiting for tool_call_id {sorted(unknown)}", param="inputs")
    if pending and any(not isinstance(e, FunctionResultEntry) for e in inputs):
        raise FunctionResultsMissing([p for p in pending if p not in given])


class ConversationService:
    def __init__(self, store: Store, agents: AgentService, runtime: Runtime, files: FileService | None = None,
                 blobs: BlobStore | None = None, session_ttl_s: int = 7 * 24 * 3600, max_input_entries: int = 200,
                 max_entries: int = 5000, max_entry_bytes: int = 300_000, quota: StorageQuota | None = None) -> None:
        self.store = store
        self.agents = agents
        self.runtime = runtime
        self.files = files
        self.blobs = blobs
        self.session_ttl_s = session_ttl_s
        self.max_input_entries = max_input_entries
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self.quota = quota

    # -- bounds ---------------------------------------------------------------------------------
    def _bounded_inputs(self, inputs: str | list[Entry] | None) -> list[Entry]:
        """The request's inputs as entries, at most ``max_input_entries`` of them (422 otherwise)."""
        if isinstance(inputs, list) and len(inputs) > self.max_input_entries:
            raise ValidationFailed([{"type": "too_long", "loc": ["body", "inputs"],
                                     "msg": f"at most {self.max_input_entries} input entries per request "
                                            f"(MAX_INPUT_ENTRIES); got {len(inputs)}"}])
        entries = _inputs(inputs)
        self._check_entry_sizes(entries, "inputs")
        return entries

    def _check_entry_sizes(self, entries: list[Entry], what: str) -> None:
        """Every entry is stored whole, as one item: at most ``max_entry_bytes`` (DynamoDB's items
        stop at 400 KB), refused the same way whatever the storage, before anything is stored."""
        for index, entry in enumerate(entries):
            size = len(StoredEntry(entry=entry).model_dump_json(by_alias=True).encode())
            if size > self.max_entry_bytes:
                where = f"{what}[{index}]"
                raise PayloadTooLarge(f"{where} would be stored as {size} bytes; an entry holds at most "
                                      f"{self.max_entry_bytes} bytes (MAX_ENTRY_BYTES)", param=where)

    def _check_room(self, held: int, adding: int) -> None:
        """A conversation holds at most ``max_entries``: a turn that would start beyond it is refused
        before it runs (its own outputs may go a few entries over)."""
        if held + adding > self.max_entries:
            raise InvalidRequest(f"inputs: the conversation would hold {held + adding} entries, over the limit of "
                                 f"{self.max_entries} (MAX_CONVERSATION_ENTRIES); start a new conversation, or "
                                 "restart this one from an earlier entry", param="inputs")

    # -- what the code works with -----------------------------------------------------------
    def _check_file_refs(self, ws: str, inputs: list[Entry]) -> None:
        """Files named in the inputs must exist in this workspace (404 otherwise, like any id)."""
        for file_id in file_refs(inputs):
            if self.files is None:
                raise InvalidRequest("file chunks need the Files API, which is not configured", param="inputs")
            self.files.get(ws, file_id)

    def _tool_context(self, ws: str, conversation_id: str, history: list[Entry], kept: Kept) -> ToolContext:
        """What this turn's executions work with. Files and session state travel by reference:
        the sandbox adapter moves them between the blob store and the sandbox, never through here.
        What the turn stores is recorded in ``kept`` (and counted against the storage quota)."""
        if self.files is None or self.blobs is None:
            return ToolContext(workspace=ws)
        files, blobs = self.files, self.blobs
        by_name: dict[str, SandboxFile] = {}
        unusable: list[str] = []
        deleted: list[str] = []
        for file_id in file_refs(history):
            try:
                record = files.record(ws, file_id)
            except NotFound:  # deleted through the Files API since: the rest still works
                deleted.append(file_id)
                continue
            if file_name_problem(record.filename):  # stored before names were bounded: never sent on
                unusable.append(file_id)
                continue
            by_name[record.filename] = SandboxFile(name=record.filename, mime_type=record.mimetype or "",
                                                   size=record.bytes, key=file_key(ws, record.id))
        context = ToolContext(input_files=list(by_name.values()), workspace=ws, blobs=blobs)
        if unusable:
            context.notes.append(f"files {unusable} have names the sandbox cannot use and were not handed to the "
                                 "code; upload them again under a name of at most 255 bytes")
        if deleted:
            context.notes.append(f"files {deleted} were deleted and are no longer handed to the code")
        context.state_key, note = self._resume_session(ws, conversation_id, history)
        if note:
            context.notes.append(note)

        quota = self.quota

        def save_state(entry_id: str, state: SessionState) -> str:
            key = session_key(ws, conversation_id, entry_id)
            if state.key is not None and not state.key.startswith(SANDBOX_PREFIX):
                raise ValueError(f"a session state must come from a sandbox exchange, not {state.key!r}")
            size = state.bytes if state.key is not None else len(state.content())
            if quota is not None:
                quota.charge(ws, SESSIONS, size, "the interpreter's session state")  # refused: the state before stays
            try:
                if state.key is not None:
                    blobs.move(state.key, key)
                else:
                    blobs.put(key, state.content())
            except BaseException:
                if quota is not None:
                    quota.credit(ws, SESSIONS, size)
                raise
            kept.sessions.append((key, size))
            return key

        def save_file(name: str, produced: SandboxFile) -> str:
            name = name.rsplit("/", 1)[-1]
            if produced.key is not None:
                file_id = files.adopt_blob(ws, name, produced.key, "code_interpreter", produced.mime_type).id
            else:
                file_id = files.upload(ws, name, produced.content(), "code_interpreter", produced.mime_type,
                                       source="mistral").id
            kept.files.append(file_id)
            return file_id

        context.save_state, context.save_file, context.discard = save_state, save_file, blobs.delete_prefix
        if quota is not None:
            context.room = lambda: quota.room(ws)
        return context

    def _forget_sessions(self, ws: str, sessions: list[tuple[str, int]]) -> None:
        """Remove session states this service stored, and give their bytes back to the quota."""
        if self.blobs is None:
            return
        for key, size in sessions:
            self.blobs.delete(key)
            if self.quota is not None:
                self.quota.credit(ws, SESSIONS, size)

    def _undo(self, ws: str, kept: Kept) -> None:
        """A turn that failed or was cancelled before it was saved: nothing it stored stays (no
        entry will ever name these states, and the files were never shown)."""
        with contextlib.suppress(Exception):  # the turn's own error is what the caller hears
            self._forget_sessions(ws, kept.sessions)
            for file_id in kept.files:
                if self.files is not None:
                    self.files.remove(ws, file_id)

    def _resume_session(self, ws: str, conversation_id: str, history: list[Entry]) -> tuple[str | None, str | None]:
        """The key of the interpreter state left by the latest execution: this conversation's own
        key and nowhere else: clients cannot name a key (session_ref is refused in input), and a
        stored reference outside ``sessions/<ws>/<conversation>/`` is refused here, at load."""
        latest = next((e for e in reversed(history) if isinstance(e, ToolExecutionEntry) and e.session_ref), None)
        if latest is None or self.blobs is None:
            return None, None
        if latest.session_ref == OVER_QUOTA_SESSION:
            return None, ("the interpreter session this conversation was restarted from was not copied: the "
                          "workspace's storage quota had no room for it; variables and files start fresh")
        if not is_own_session(latest.session_ref or "", ws, conversation_id, latest.id):
            return None, ("the interpreter session recorded earlier is not this conversation's own and was not "
                          "loaded; variables and files start fresh")
        if self.blobs.size(latest.session_ref or "", max_age_s=self.session_ttl_s) is None:
            return None, "the interpreter session from earlier in this conversation has expired; variables and files start fresh"
        return latest.session_ref, None

    def _adopt_sessions(self, ws: str, source_id: str, target_id: str, kept: list[Entry]) -> list[Entry]:
        """A restart's copy of the history gets its own copy of the session state (the new
        conversation loads only from its own prefix, and outlives the deletion of its source).
        State the source does not own is neither copied nor carried."""
        if self.blobs is None:
            return kept
        adopted: list[Entry] = []
        for entry in kept:
            if isinstance(entry, ToolExecutionEntry) and entry.session_ref:
                ref = REFUSED_SESSION  # a foreign key is not carried; the restart starts fresh, as append would
                if is_own_session(entry.session_ref, ws, source_id, entry.id):
                    ref = self._copy_session(ws, entry.session_ref, session_key(ws, target_id, entry.id or ""))
                entry = entry.model_copy(update={"session_ref": ref})
            adopted.append(entry)
        return adopted

    def _copy_session(self, ws: str, source: str, target: str) -> str:
        """A restart's own copy of a state, counted against the quota; the ref its entry keeps."""
        assert self.blobs is not None
        size = self.blobs.size(source, max_age_s=self.session_ttl_s)
        if size is None:
            return target  # expired: it loads as such
        if self.quota is not None:
            try:
                self.quota.charge(ws, SESSIONS, size, "a copy of the interpreter's session state")
            except QuotaExceeded:
                return OVER_QUOTA_SESSION
        if not self.blobs.copy(source, target, max_age_s=self.session_ttl_s) and self.quota is not None:
            self.quota.credit(ws, SESSIONS, size)
        return target

    # -- who answers ------------------------------------------------------------------------
    def _persona(self, ws: str, conversation: Conversation, completion_args: Any = None,
                 history: list[Entry] | None = None) -> Persona:
        """Who answers next: the agent the conversation was last handed to, else its own."""
        handoffs = [e for e in history or [] if isinstance(e, AgentHandoffEntry)]
        if handoffs:
            return self._agent_persona(ws, handoffs[-1].next_agent_id, None, completion_args)
        if conversation.agent_id:
            return self._agent_persona(ws, conversation.agent_id, conversation.agent_version, completion_args)
        return Persona(conversation.model or "", conversation.instructions, conversation.tools,
                       completion_args or conversation.completion_args)

    def _agent_persona(self, ws: str, agent_id: str, selector: int | str | None, completion_args: Any = None) -> Persona:
        _, version = self.agents.resolve_version(ws, agent_id, selector)
        targets = []
        for target_id in version.handoffs or []:
            head = self.store.get_agent_head(ws, target_id)
            if head is None:
                continue  # a deleted target is simply not offered
            target = self.store.get_agent_version(ws, target_id, head.active_version)
            if target is not None:
                targets.append(HandoffTarget(target_id, target.name, target.description or ""))
        return Persona(version.model, version.instructions, version.tools, completion_args or version.completion_args,
                       agent_id=agent_id, agent_name=version.name, handoffs=tuple(targets))

    def _load(self, ws: str, conversation_id: str) -> Conversation:
        conversation = self.store.get_conversation(ws, conversation_id)
        if conversation is None:
            raise NotFound(f"Conversation {conversation_id} not found", param="conversation_id")
        return conversation

    # -- the three ways to run a turn ---------------------------------------------------------
    def start(self, ws: str, request: StartConversationRequest, conversation_id: str | None = None) -> TurnResult:
        """``conversation_id`` is for the batch worker: a deterministic id makes a retried request
        find the conversation its first attempt stored, instead of creating a second one."""
        inputs = self._bounded_inputs(request.inputs)
        self._check_room(0, len(inputs))
        moment = now()
        conversation = Conversation(
            id=conversation_id or new_id("conv_"), created_at=moment, updated_at=moment, name=request.name,
            description=request.description, metadata=request.metadata, guardrails=request.guardrails,
        )
        if request.agent_id:
            _, version = self.agents.resolve_version(ws, request.agent_id, request.agent_version)
            conversation.agent_id = request.agent_id
            conversation.agent_version = version.version if request.agent_version is not None else None
        else:
            conversation.model = request.model
            conversation.instructions = request.instructions
            conversation.tools = request.tools or []
            conversation.completion_args = request.completion_args or conversation.completion_args
        self._check_file_refs(ws, inputs)
        _check_owed_results(pending_tool_calls(inputs), [])
        persona = self._persona(ws, conversation)

        def save(turn: Turn) -> None:
            conversation.pending_tool_call_ids = pending_tool_calls(inputs + turn.outputs)
            self._check_entry_sizes(turn.outputs, "outputs")
            self.store.create_conversation(ws, conversation, inputs + turn.outputs)

        return self._turn(ws, conversation.id, persona, inputs, save if request.store is not False else None,
                          request.handoff_execution)

    def append(self, ws: str, conversation_id: str, request: AppendConversationRequest) -> TurnResult:
        inputs = self._bounded_inputs(request.inputs)
        conversation = self._load(ws, conversation_id)
        self._check_room(conversation.entry_count, len(inputs))
        self._check_file_refs(ws, inputs)
        history = self.store.get_entries(ws, conversation_id)
        confirmations = _confirmations(history, request.tool_confirmations or [])
        if not inputs and not confirmations:
            raise InvalidRequest("inputs is required", param="inputs")
        confirmed = {call.tool_call_id for call, _ in confirmations}
        _check_owed_results([p for p in conversation.pending_tool_call_ids if p not in confirmed], inputs)
        persona = self._persona(ws, conversation, request.completion_args, history)
        expected = conversation.entry_count

        def save(turn: Turn) -> None:
            updated = conversation.model_copy(update={
                "updated_at": now(),
                "pending_tool_call_ids": pending_tool_calls(history + inputs + turn.outputs),
            })
            self._check_entry_sizes(turn.outputs, "outputs")
            self.store.append_entries(ws, updated, inputs + turn.outputs, expected_count=expected)

        return self._turn(ws, conversation.id, persona, history + inputs, save if request.store is not False else None,
                          request.handoff_execution, confirmations)

    def restart(self, ws: str, conversation_id: str, request: RestartConversationRequest) -> TurnResult:
        inputs = self._bounded_inputs(request.inputs)
        source = self._load(ws, conversation_id)
        history = self.store.get_entries(ws, conversation_id)
        cut = next((i for i, e in enumerate(history) if e.id == request.from_entry_id), None)
        if cut is None:
            raise NotFound(f"Entry {request.from_entry_id} not found in conversation {conversation_id}",
                           param="from_entry_id")
        self._check_room(cut + 1, len(inputs))
        moment = now()
        conversation = source.model_copy(update={
            "id": new_id("conv_"), "created_at": moment, "updated_at": moment, "entry_count": 0,
            "metadata": request.metadata if request.metadata is not None else source.metadata,
        })
        if request.agent_version is not None:
            if not conversation.agent_id:
                raise InvalidRequest("agent_version applies only to agent conversations", param="agent_version")
            _, version = self.agents.resolve_version(ws, conversation.agent_id, request.agent_version)
            conversation.agent_version = version.version
        self._check_file_refs(ws, inputs)
        _check_owed_results(pending_tool_calls(history[: cut + 1]), inputs)
        kept = self._adopt_sessions(ws, source.id, conversation.id, history[: cut + 1])
        persona = self._persona(ws, conversation, request.completion_args, kept)

        def save(turn: Turn) -> None:
            conversation.pending_tool_call_ids = pending_tool_calls(kept + inputs + turn.outputs)
            self._check_entry_sizes(turn.outputs, "outputs")
            self.store.create_conversation(ws, conversation, kept + inputs + turn.outputs)

        return self._turn(ws, conversation.id, persona, kept + inputs, save if request.store is not False else None,
                          request.handoff_execution)

    def _turn(self, ws: str, conversation_id: str, persona: Persona, history: list[Entry],
              save: Callable[[Turn], None] | None, handoff_execution: str | None,
              confirmations: list[tuple[FunctionCallEntry, bool]] | None = None) -> TurnResult:
        def drive(turn: Turn, context: ToolContext) -> Iterator[Event]:
            return self.runtime.run(persona, history, turn, handoff_execution or "server",
                                    lambda agent_id: self._agent_persona(ws, agent_id, None), confirmations or [],
                                    context)

        return self._run(ws, conversation_id, history, save, drive)

    def _run(self, ws: str, conversation_id: str, history: list[Entry], save: Callable[[Turn], None] | None,
             drive: Callable[[Turn, ToolContext], Iterator[Event]]) -> TurnResult:
        """A turn's events around ``drive`` (the model loop, or one direct execution): stored whole
        by ``save`` before it is done, or nothing it made is kept."""
        result = TurnResult(conversation_id, iter(()), Turn())

        def events() -> Iterator[Event]:
            yield {"type": "conversation.response.started", "created_at": iso(now()), "conversation_id": conversation_id}
            kept, saved = Kept(), False
            try:
                context = self._tool_context(ws, conversation_id, history, kept)
                yield from drive(result.turn, context)
                if save is not None:
                    save(result.turn)
                saved = True
            except ApiError as exc:
                result.error = exc
                yield {"type": "conversation.response.error", "created_at": iso(now()), "message": exc.message,
                       "code": exc.status}
                return
            finally:
                if not saved:  # failed, or cancelled (the generator closed): nothing of the turn stays
                    self._undo(ws, kept)
                elif save is None:  # store=false: no later turn can name these states
                    self._forget_sessions(ws, kept.sessions)
            yield {"type": "conversation.response.done", "created_at": iso(now()), "usage": result.turn.usage.to_api()}

        result.events = events()
        return result

    # -- the interpreter driven directly, without a model (the MCP server's sessions) -----------
    def _session_persona(self, ws: str, conversation: Conversation, history: list[Entry]) -> Persona:
        """Who the execution is recorded for: whoever answers in the conversation (an agent whose
        code runs only once confirmed is not bypassed); its model alone if the agent is gone."""
        try:
            persona = self._persona(ws, conversation, history=history)
        except NotFound:
            persona = Persona(SESSION_MODEL, None, conversation.tools, conversation.completion_args)
        if persona.needs_confirmation(CODE_INTERPRETER):
            raise InvalidRequest("this conversation's agent runs code only once the user confirms each call "
                                 "(tool_configuration.requires_confirmation); it cannot be driven directly",
                                 param="session_id")
        return persona

    def _check_code_size(self, code: str) -> None:
        """A run is stored as one entry holding the code twice (arguments and info.code) beside its
        output: code that could never be stored is refused before it runs, not after."""
        limit = max(1024, (self.max_entry_bytes - RUN_OUTPUT_ROOM_BYTES) // 2)
        size = len(code.encode("utf-8"))
        if size > limit:
            raise PayloadTooLarge(f"code is {size} bytes; a run is stored in one entry of at most "
                                  f"{self.max_entry_bytes} bytes (MAX_ENTRY_BYTES), which takes at most {limit} "
                                  "bytes of code", param="code")


    def run_code(self, ws: str, conversation_id: str | None, code: str,
                 inputs: list[Entry] | None = None) -> TurnResult:
        """Run ``code`` in a conversation's interpreter as if its model had called the code
        interpreter with it: the same sandbox, session state, files, quota and stored
        ``tool.execution`` entry, after ``inputs`` (e.g. a message attaching files). Without an id,
        a new conversation holds the session. ``code`` None stores the inputs alone."""
        inputs = _stamp(list(inputs or []))
        if conversation_id is None:
            moment = now()
            conversation = Conversation(id=new_id("conv_"), created_at=moment, updated_at=moment, model=SESSION_MODEL,
                                        tools=[CodeInterpreterTool(type="code_interpreter")],
                                        name="Python session", metadata={"source": "mcp"})
            history: list[Entry] = []
        else:
            conversation = self._load(ws, conversation_id)
            history = self.store.get_entries(ws, conversation_id)
            # While function results are owed, Mistral's rule admits nothing else into the history
            # (an execution stored between a call and its result would break every later turn).
            if conversation.pending_tool_call_ids:
                raise FunctionResultsMissing(list(conversation.pending_tool_call_ids))
        self._check_room(conversation.entry_count, len(inputs) + 1)
        self._check_file_refs(ws, inputs)
        persona = self._session_persona(ws, conversation, history)
        if code is not None:
            self._check_code_size(code)
        expected, new = conversation.entry_count, conversation_id is None

        def save(turn: Turn) -> None:
            self._check_entry_sizes(turn.outputs, "outputs")
            if new:
                self.store.create_conversation(ws, conversation, inputs + turn.outputs)
            else:
                self.store.append_entries(ws, conversation.model_copy(update={"updated_at": now()}),
                                          inputs + turn.outputs, expected_count=expected)

        def drive(turn: Turn, context: ToolContext) -> Iterator[Event]:
            return iter(()) if code is None else self.runtime.execute_code(persona, code, turn, history + inputs, context)

        return self._run(ws, conversation.id, history + inputs, save, drive)

    # -- read side ----------------------------------------------------------------------------
    def list(self, ws: str, page: int, page_size: int, metadata: dict[str, Any] | None) -> list[dict[str, Any]]:
        found = offset_page(lambda limit, token: self.store.list_conversations(ws, limit, token), page, page_size,
                            keep=(lambda conversation: metadata_matches(conversation.metadata, metadata)) if metadata else None)
        return [conversation.to_api() for conversation in found]

    def get(self, ws: str, conversation_id: str) -> dict[str, Any]:
        return self._load(ws, conversation_id).to_api()

    def delete(self, ws: str, conversation_id: str) -> None:
        if not self.store.delete_conversation(ws, conversation_id):
            raise NotFound(f"Conversation {conversation_id} not found", param="conversation_id")
        if self.blobs is not None:
            freed = self.blobs.delete_prefix(session_prefix(ws, conversation_id))
            if self.quota is not None:
                self.quota.credit(ws, SESSIONS, freed)

    def entries(self, ws: str, conversation_id: str) -> list[Entry]:
        self._load(ws, conversation_id)
        return self.store.get_entries(ws, conversation_id)

    def history(self, ws: str, conversation_id: str) -> dict[str, Any]:
        self._load(ws, conversation_id)
        entries = self.store.get_entries(ws, conversation_id)
        return {"object": "conversation.history", "conversation_id": conversation_id,
                "entries": [entry_to_api(e) for e in entries]}

    def messages(self, ws: str, conversation_id: str) -> dict[str, Any]:
        self._load(ws, conversation_id)
        entries = self.store.get_entries(ws, conversation_id)
        messages = [entry_to_api(e) for e in entries if isinstance(e, (MessageInputEntry, MessageOutputEntry))]
        return {"object": "conversation.messages", "conversation_id": conversation_id, "messages": messages}


def file_refs(entries: list[Entry]) -> list[str]:
    """File ids handed to the code through ``file`` chunks of input messages, in order."""
    # The official SDK can send a ``tool_file`` chunk for the code interpreter in a message input;
    # plain HTTP clients may also use Mistral's ``file`` chunk.
    return [chunk.file_id for entry in entries if isinstance(entry, MessageInputEntry) and isinstance(entry.content, list)
            for chunk in entry.content
            if isinstance(chunk, FileChunk) or (isinstance(chunk, ToolFileChunk) and chunk.tool == "code_interpreter")]

