"""The Store port's contract, run on both adapters: DynamoDB (moto) and SQLite (a real file).

What the domain relies on: conditional writes (one of two concurrent writers wins, the other gets
the same Conflict, nothing lost or interleaved), listing order and token paging, workspace
isolation, deletes that take their children with them, and the same answers for unknown ids.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentsapi.adapters.dynamodb_store import DynamoDBStore
from agentsapi.adapters.sqlite.store import SqliteStore
from agentsapi.errors import Conflict, InvalidRequest
from agentsapi.models.agents import AgentAlias, AgentHead, AgentVersion
from agentsapi.models.conversations import Conversation
from agentsapi.models.entries import Entry, MessageInputEntry, MessageOutputEntry, ToolExecutionEntry
from agentsapi.models.files import FileRecord
from agentsapi.store import Page, Store
from tests.contract.backends import BACKENDS, TABLE, adapter_on

WS, OTHER = "ws-a", "ws-b"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
UNICODE = "héllo wörld ✓ 日本語 עברית 🧪🚀 \u0000 \\ \" '"
CONVERSATION_RACE = "the conversation was changed by a concurrent request; retry"
AGENT_RACE = "the agent was updated concurrently; retry the update"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from adapter_on(request, tmp_path, lambda client: DynamoDBStore(client, TABLE), SqliteStore)


# -- builders ---------------------------------------------------------------------------------
def agent(agent_id: str, created: datetime = T0, name: str = "analyst") -> tuple[AgentHead, AgentVersion]:
    head = AgentHead(id=agent_id, active_version=0, latest_version=0, created_at=created, updated_at=created)
    return head, AgentVersion(id=agent_id, version=0, model="m", name=name, created_at=created)


def next_version(head: AgentHead, version: AgentVersion, **changes: Any) -> tuple[AgentHead, AgentVersion]:
    number = head.latest_version + 1
    new_head = head.model_copy(update={"active_version": number, "latest_version": number})
    return new_head, version.model_copy(update={"version": number, **changes})


def conversation(conversation_id: str, created: datetime = T0, **fields: Any) -> Conversation:
    return Conversation(id=conversation_id, created_at=created, updated_at=created, model="m", **fields)


def messages(*texts: str, prefix: str = "msg") -> list[Entry]:
    return [MessageInputEntry(id=f"{prefix}_{i}", content=text, created_at=T0) for i, text in enumerate(texts)]


def file_record(file_id: str, created: int = 1_770_000_000, name: str = "data.csv") -> FileRecord:
    return FileRecord(id=file_id, bytes=3, created_at=created, filename=name, purpose="code_interpreter")


def contents(entries: list[Entry]) -> list[Any]:
    return [getattr(e, "content", None) for e in entries]


def run_together(*calls: Callable[[], Any]) -> list[BaseException | None]:
    """Start every call at the same moment on its own thread; what each raised (None: returned)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


# -- agents -----------------------------------------------------------------------------------
def test_agent_versions_are_conditional_on_the_latest(store: Store) -> None:
    head, version = agent("ag_1", name=UNICODE)
    store.create_agent(WS, head, version)
    assert store.get_agent_head(WS, "ag_1") == head
    assert store.get_agent_version(WS, "ag_1", 0) == version
    head1, version1 = next_version(head, version, model="m1")
    store.add_agent_version(WS, head1, version1, expected_latest=0)
    with pytest.raises(Conflict) as stale:  # written against version 0 again
        store.add_agent_version(WS, *next_version(head, version), expected_latest=0)
    assert stale.value.message == AGENT_RACE and stale.value.status == 409
    assert [v.version for v in store.list_agent_versions(WS, "ag_1")] == [0, 1]
    assert store.get_agent_head(WS, "ag_1") == head1
    assert store.get_agent_version(WS, "ag_1", 1).model == "m1"


def test_creating_an_existing_agent_conflicts_and_changes_nothing(store: Store) -> None:
    head, version = agent("ag_1")
    store.create_agent(WS, head, version)
    with pytest.raises(Conflict, match="^agent already exists$"):
        store.create_agent(WS, *agent("ag_1", name="other"))
    assert store.get_agent_version(WS, "ag_1", 0).name == "analyst"


def test_switching_the_active_version_needs_the_latest_unchanged(store: Store) -> None:
    head, version = agent("ag_1")
    store.create_agent(WS, head, version)
    head1, version1 = next_version(head, version)
    store.add_agent_version(WS, head1, version1, expected_latest=0)
    store.set_active_version(WS, head1.model_copy(update={"active_version": 0}))
    assert store.get_agent_head(WS, "ag_1").active_version == 0
    with pytest.raises(Conflict, match="^the agent was updated concurrently; retry$"):  # read before version 1 existed
        store.set_active_version(WS, head.model_copy(update={"active_version": 0}))


def test_concurrent_agent_updates_one_wins_then_retries_all_land(store: Store) -> None:
    head, version = agent("ag_1")
    store.create_agent(WS, head, version)
    outcomes = run_together(*[lambda n=n: store.add_agent_version(WS, *next_version(head, version, model=f"m{n}"),
                                                                  expected_latest=0) for n in range(4)])
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, Conflict) and o.message == AGENT_RACE for o in outcomes if o is not None)
    assert [v.version for v in store.list_agent_versions(WS, "ag_1")] == [0, 1]

    def update_until_done() -> None:
        while True:
            current = store.get_agent_head(WS, "ag_1")
            try:
                store.add_agent_version(WS, *next_version(current, version), expected_latest=current.latest_version)
                return
            except Conflict:
                continue

    assert run_together(*[update_until_done] * 4) == [None] * 4
    assert [v.version for v in store.list_agent_versions(WS, "ag_1")] == [0, 1, 2, 3, 4, 5]
    assert store.get_agent_head(WS, "ag_1").latest_version == 5


def test_aliases_overwrite_list_by_name_and_report_deletes(store: Store) -> None:
    store.create_agent(WS, *agent("ag_1"))
    for name, number in [("stable", 0), ("beta", 0), ("stable", 1), ("alpha-2", 0)]:
        store.put_alias(WS, "ag_1", AgentAlias(alias=name, version=number, created_at=T0, updated_at=T0))
    assert [(a.alias, a.version) for a in store.list_aliases(WS, "ag_1")] == [("alpha-2", 0), ("beta", 0), ("stable", 1)]
    assert store.get_alias(WS, "ag_1", "stable").version == 1
    assert store.delete_alias(WS, "ag_1", "beta") is True
    assert store.delete_alias(WS, "ag_1", "beta") is False
    assert store.get_alias(WS, "ag_1", "beta") is None


def test_deleting_an_agent_takes_its_versions_and_aliases(store: Store) -> None:
    head, version = agent("ag_1")
    store.create_agent(WS, head, version)
    store.add_agent_version(WS, *next_version(head, version), expected_latest=0)
    store.put_alias(WS, "ag_1", AgentAlias(alias="stable", version=1, created_at=T0, updated_at=T0))
    store.create_agent(WS, *agent("ag_2"))
    store.delete_agent(WS, "ag_1")
    assert store.get_agent_head(WS, "ag_1") is None and store.get_agent_version(WS, "ag_1", 1) is None
    assert store.list_agent_versions(WS, "ag_1") == [] and store.list_aliases(WS, "ag_1") == []
    assert [h.id for h in store.list_agents(WS, 10, None).items] == ["ag_2"]
    store.create_agent(WS, *agent("ag_1"))  # the id is free again, with nothing left over
    assert [v.version for v in store.list_agent_versions(WS, "ag_1")] == [0]
    assert store.get_alias(WS, "ag_1", "stable") is None


# -- conversations ----------------------------------------------------------------------------
def test_a_conversation_keeps_its_entries_in_order_and_its_head_tracks_the_count(store: Store) -> None:
    store.create_conversation(WS, conversation("conv_1", metadata={"k": UNICODE}), messages("one", UNICODE))
    stored = store.get_conversation(WS, "conv_1")
    assert stored.entry_count == 2 and stored.metadata == {"k": UNICODE}
    later = stored.model_copy(update={"updated_at": T0 + timedelta(minutes=1), "pending_tool_call_ids": ["call_1"]})
    store.append_entries(WS, later, messages("three", "four", prefix="b"), expected_count=2)
    assert contents(store.get_entries(WS, "conv_1")) == ["one", UNICODE, "three", "four"]
    assert store.get_conversation(WS, "conv_1") == later.model_copy(update={"entry_count": 4})
    store.append_entries(WS, later, [], expected_count=4)  # a turn that stores nothing still checks and writes the head
    assert store.get_conversation(WS, "conv_1").entry_count == 4


def test_entries_keep_every_field(store: Store) -> None:
    entries: list[Entry] = [
        MessageInputEntry(id="msg_1", content=[{"type": "text", "text": UNICODE}], created_at=T0),
        ToolExecutionEntry(id="tool_exec_1", name="code_interpreter", arguments='{"code": "print(1)"}',
                           session_ref="sessions/ws-a/conv_1/tool_exec_1", info={"code": "print(1)", "code_output": "1\n"},
                           created_at=T0, completed_at=T0 + timedelta(seconds=1)),
        MessageOutputEntry(id="msg_2", content=UNICODE, agent_id="ag_1", model="m", created_at=T0),
    ]
    store.create_conversation(WS, conversation("conv_1"), entries)
    assert store.get_entries(WS, "conv_1") == entries


def test_starting_an_existing_conversation_conflicts(store: Store) -> None:
    store.create_conversation(WS, conversation("conv_1"), messages("one"))
    with pytest.raises(Conflict, match="^conversation already exists$"):
        store.create_conversation(WS, conversation("conv_1"), messages("other"))
    assert contents(store.get_entries(WS, "conv_1")) == ["one"]


def test_a_stale_append_conflicts_and_changes_nothing(store: Store) -> None:
    store.create_conversation(WS, conversation("conv_1"), messages("one", "two"))
    head = store.get_conversation(WS, "conv_1")
    for expected in (0, 1, 3):
        with pytest.raises(Conflict) as caught:
            store.append_entries(WS, head.model_copy(update={"name": "changed"}), messages("x"), expected_count=expected)
        assert caught.value.message == CONVERSATION_RACE and caught.value.status == 409
    assert store.get_conversation(WS, "conv_1") == head
    assert contents(store.get_entries(WS, "conv_1")) == ["one", "two"]


def test_two_concurrent_appends_one_lands_the_other_conflicts_nothing_interleaved(store: Store) -> None:
    store.create_conversation(WS, conversation("conv_1"), messages("first"))
    head = store.get_conversation(WS, "conv_1")
    turns = {side: messages(*[f"{side}{i}" for i in range(5)], prefix=side) for side in "AB"}
    outcomes = run_together(*[lambda side=side: store.append_entries(WS, head, turns[side], expected_count=1) for side in "AB"])
    assert sorted(o is None for o in outcomes) == [False, True]
    loser = next(o for o in outcomes if o is not None)
    assert isinstance(loser, Conflict) and loser.message == CONVERSATION_RACE
    winner = "AB"[outcomes.index(None)]
    assert contents(store.get_entries(WS, "conv_1")) == ["first", *contents(turns[winner])]
    assert store.get_conversation(WS, "conv_1").entry_count == 6


def test_concurrent_retrying_appends_all_land_each_turn_contiguous(store: Store) -> None:
    store.create_conversation(WS, conversation("conv_1"), messages("first"))
    writers, turns_each, per_turn = 4, 3, 3

    def write(writer: int) -> None:
        for turn in range(turns_each):
            entries = messages(*[f"w{writer}t{turn}e{i}" for i in range(per_turn)], prefix=f"w{writer}t{turn}")
            while True:
                head = store.get_conversation(WS, "conv_1")
                try:
                    store.append_entries(WS, head, entries, expected_count=head.entry_count)
                    break
                except Conflict:
                    continue

    assert run_together(*[lambda w=w: write(w) for w in range(writers)]) == [None] * writers
    texts = contents(store.get_entries(WS, "conv_1"))
    assert texts[0] == "first" and len(texts) == 1 + writers * turns_each * per_turn
    turns = [texts[i : i + per_turn] for i in range(1, len(texts), per_turn)]
    assert all(len({t.split("e")[0] for t in turn}) == 1 for turn in turns)  # never interleaved
    assert sorted(t for turn in turns for t in turn) == sorted(
        f"w{w}t{t}e{i}" for w in range(writers) for t in range(turns_each) for i in range(per_turn))
    assert store.get_conversation(WS, "conv_1").entry_count == len(texts)


def test_long_histories_beyond_one_dynamodb_transaction(store: Store) -> None:
    texts = [f"entry {i}" for i in range(230)]
    store.create_conversation(WS, conversation("conv_1"), messages(*texts))
    head = store.get_conversation(WS, "conv_1")
    assert head.entry_count == 230
    more = [f"more {i}" for i in range(120)]
    store.append_entries(WS, head, messages(*more, prefix="more"), expected_count=230)
    assert contents(store.get_entries(WS, "conv_1")) == texts + more
    assert store.get_conversation(WS, "conv_1").entry_count == 350


def test_large_entries_round_trip(store: Store) -> None:
    # Below DynamoDB's 400 KB item limit: the largest an entry can be in both adapters.
    big = ("0123456789abcdef" * 12_000) + UNICODE * 100
    store.create_conversation(WS, conversation("conv_1"), messages(big))
    store.append_entries(WS, store.get_conversation(WS, "conv_1"), messages(big[::-1], prefix="b"), expected_count=1)
    assert contents(store.get_entries(WS, "conv_1")) == [big, big[::-1]]


def test_deleting_a_conversation_takes_its_entries(store: Store) -> None:
    store.create_conversation(WS, conversation("conv_1"), messages(*[f"e{i}" for i in range(30)]))
    store.create_conversation(WS, conversation("conv_2"), messages("kept"))
    assert store.delete_conversation(WS, "conv_1") is True
    assert store.get_conversation(WS, "conv_1") is None and store.get_entries(WS, "conv_1") == []
    assert store.delete_conversation(WS, "conv_1") is False
    assert [c.id for c in store.list_conversations(WS, 10, None).items] == ["conv_2"]
    assert contents(store.get_entries(WS, "conv_2")) == ["kept"]
    store.create_conversation(WS, conversation("conv_1"), messages("new"))  # the id starts afresh
    assert contents(store.get_entries(WS, "conv_1")) == ["new"]


# -- files ------------------------------------------------------------------------------------
def test_files_are_written_once_and_deletes_report_whether_they_found_one(store: Store) -> None:
    record = file_record("f-1", name=UNICODE)
    store.put_file(WS, record)
    assert store.get_file(WS, "f-1") == record
    with pytest.raises(Conflict, match="^file already exists$"):
        store.put_file(WS, file_record("f-1", name="other"))
    assert store.get_file(WS, "f-1") == record
    assert store.delete_file(WS, "f-1") is True
    assert store.delete_file(WS, "f-1") is False
    assert store.get_file(WS, "f-1") is None


# -- unknown ids and workspaces ---------------------------------------------------------------
def test_unknown_ids_read_as_absent_and_writes_to_them_conflict(store: Store) -> None:
    assert store.get_agent_head(WS, "ag_x") is None and store.get_agent_version(WS, "ag_x", 0) is None
    assert store.list_agent_versions(WS, "ag_x") == [] and store.list_aliases(WS, "ag_x") == []
    assert store.get_alias(WS, "ag_x", "a") is None and store.delete_alias(WS, "ag_x", "a") is False
    assert store.delete_agent(WS, "ag_x") is None
    assert store.get_conversation(WS, "conv_x") is None and store.get_entries(WS, "conv_x") == []
    assert store.delete_conversation(WS, "conv_x") is False
    assert store.get_file(WS, "f-x") is None and store.delete_file(WS, "f-x") is False
    head, version = agent("ag_x")
    with pytest.raises(Conflict, match=f"^{AGENT_RACE}$"):
        store.add_agent_version(WS, *next_version(head, version), expected_latest=0)
    with pytest.raises(Conflict, match="^the agent was updated concurrently; retry$"):
        store.set_active_version(WS, head)
    with pytest.raises(Conflict, match=f"^{CONVERSATION_RACE}$"):
        store.append_entries(WS, conversation("conv_x"), messages("x"), expected_count=0)
    assert store.get_conversation(WS, "conv_x") is None and store.get_entries(WS, "conv_x") == []
    for listing in (store.list_agents, store.list_conversations, store.list_files):
        assert listing(WS, 10, None) == Page([], None)


def test_another_workspaces_ids_are_invisible_and_untouchable(store: Store) -> None:
    head, version = agent("ag_1")
    store.create_agent(WS, head, version)
    store.put_alias(WS, "ag_1", AgentAlias(alias="stable", version=0, created_at=T0, updated_at=T0))
    store.create_conversation(WS, conversation("conv_1"), messages("secret"))
    store.put_file(WS, file_record("f-1"))

    assert store.get_agent_head(OTHER, "ag_1") is None and store.get_agent_version(OTHER, "ag_1", 0) is None
    assert store.list_agent_versions(OTHER, "ag_1") == [] and store.list_aliases(OTHER, "ag_1") == []
    assert store.get_alias(OTHER, "ag_1", "stable") is None and store.delete_alias(OTHER, "ag_1", "stable") is False
    assert store.get_conversation(OTHER, "conv_1") is None and store.get_entries(OTHER, "conv_1") == []
    assert store.get_file(OTHER, "f-1") is None
    for listing in (store.list_agents, store.list_conversations, store.list_files):
        assert listing(OTHER, 10, None).items == []
    with pytest.raises(Conflict):
        store.append_entries(OTHER, conversation("conv_1"), messages("planted"), expected_count=1)
    with pytest.raises(Conflict):
        store.add_agent_version(OTHER, *next_version(head, version), expected_latest=0)
    assert store.delete_conversation(OTHER, "conv_1") is False and store.delete_file(OTHER, "f-1") is False
    store.delete_agent(OTHER, "ag_1")

    # The same ids in the other workspace are separate objects.
    store.create_agent(OTHER, *agent("ag_1", name="theirs"))
    store.create_conversation(OTHER, conversation("conv_1"), messages("theirs"))
    store.put_file(OTHER, file_record("f-1", name="theirs.csv"))
    assert store.get_agent_version(WS, "ag_1", 0).name == "analyst"
    assert store.get_alias(WS, "ag_1", "stable") is not None
    assert contents(store.get_entries(WS, "conv_1")) == ["secret"]
    assert contents(store.get_entries(OTHER, "conv_1")) == ["theirs"]
    assert store.get_file(WS, "f-1").filename == "data.csv"


# -- listings ---------------------------------------------------------------------------------
LISTINGS = ["agents", "conversations", "files"]


def fill(store: Store, kind: str, ws: str, count: int) -> list[str]:
    """``count`` items, some sharing a creation time; their ids newest first, ties by id descending."""
    made: list[tuple[str, str]] = []
    for i in range(count):
        created = T0 + timedelta(seconds=i // 3)  # three per second: ties are broken by id
        # microsecond-less and microsecond timestamps mixed: the order must still be the GSI's
        created += timedelta(microseconds=500_000 * (i % 2) if i % 3 == 2 else 0)
        item_id = f"{kind[:2]}_{(i * 7) % count:03d}"
        if kind == "agents":
            store.create_agent(ws, *agent(item_id, created))
            sort_key = f"{created.isoformat()}#{item_id}"
        elif kind == "conversations":
            store.create_conversation(ws, conversation(item_id, created), messages("x"))
            sort_key = f"{created.isoformat()}#{item_id}"
        else:
            store.put_file(ws, file_record(item_id, created=1_770_000_000 + i // 3))
            sort_key = f"{1_770_000_000 + i // 3:012d}#{item_id}"
        made.append((sort_key, item_id))
    return [item_id for _, item_id in sorted(made, reverse=True)]


def lister(store: Store, kind: str) -> Callable[[str, int, str | None], Page]:
    return {"agents": store.list_agents, "conversations": store.list_conversations, "files": store.list_files}[kind]


@pytest.mark.parametrize("kind", LISTINGS)
def test_listings_are_newest_first_and_page_through_every_item_once(store: Store, kind: str) -> None:
    expected = fill(store, kind, WS, 11)
    fill(store, kind, OTHER, 4)
    assert [item.id for item in lister(store, kind)(WS, 100, None).items] == expected
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = lister(store, kind)(WS, 3, token)
        pages += 1
        assert len(page.items) <= 3
        seen += [item.id for item in page.items]
        if page.next_token is None:
            break
        assert isinstance(page.next_token, str) and page.next_token
        token = page.next_token
    assert seen == expected and pages in (4, 5)  # real DynamoDB may end on an empty page; moto and SQLite do not


@pytest.mark.parametrize("kind", LISTINGS)
def test_a_token_survives_deletes_and_inserts_around_it(store: Store, kind: str) -> None:
    expected = fill(store, kind, WS, 6)
    first = lister(store, kind)(WS, 2, None)
    {"agents": lambda i: store.delete_agent(WS, i), "conversations": lambda i: store.delete_conversation(WS, i),
     "files": lambda i: store.delete_file(WS, i)}[kind](expected[1])  # the item the token points after
    rest = lister(store, kind)(WS, 10, first.next_token)
    assert [item.id for item in rest.items] == expected[2:] and rest.next_token is None


def forged(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


BAD_TOKENS = {
    "garbage": "not a token!",
    "not base64": "%%%%",
    "bad padding": "abc",
    "not json": base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
    "json list": forged([1, 2]),
    "json string": forged("x"),
    "empty object": forged({}),
    "partial dynamodb key": forged({"GSI1PK": {"S": "WS#ws-a#AGENTS"}}),
    "non-ascii": "jeton-é",
}


@pytest.mark.parametrize("kind", LISTINGS)
def test_bad_page_tokens_are_refused_as_invalid_requests(store: Store, kind: str) -> None:
    fill(store, kind, WS, 3)
    for name, bad in BAD_TOKENS.items():
        with pytest.raises(InvalidRequest) as caught:
            lister(store, kind)(WS, 2, bad)
        assert (caught.value.status, caught.value.param, caught.value.message) == (
            400, "page_token", "page_token is not a token this API returned"), name


@pytest.mark.parametrize("kind", LISTINGS)
def test_a_token_is_only_good_for_its_own_listing_and_workspace(store: Store, kind: str) -> None:
    for each in LISTINGS:
        fill(store, each, WS, 3)
        fill(store, each, OTHER, 3)
    token = lister(store, kind)(WS, 1, None).next_token
    assert token
    for other_kind in LISTINGS:
        for ws in (WS, OTHER):
            if (other_kind, ws) == (kind, WS):
                assert len(lister(store, other_kind)(ws, 5, token).items) == 2
                continue
            with pytest.raises(InvalidRequest) as caught:
                lister(store, other_kind)(ws, 5, token)
            assert caught.value.param == "page_token"
