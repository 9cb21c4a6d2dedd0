"""Agents: create, versioned updates, version switches, aliases, listing and deletion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest, NotFound
from ..models.agents import (
    AgentAlias,
    AgentHead,
    AgentVersion,
    CreateAgentRequest,
    UpdateAgentRequest,
    agent_response,
)
from ..models.common import new_id, now
from ..store import Store
from .metadata import metadata_matches
from .paging import offset_page

AGENT_SOURCE = "api"  # what agent_response reports as every agent's source

# An explicit null in an update (every field is nullable in Mistral's description): an agent always
# has a model and a name, which null leaves as they are; anything else goes back to its default.
KEPT_WHEN_NULL = frozenset({"model", "name"})
AGENT_DEFAULTS: dict[str, Callable[[], Any]] = {"tools": list, "guardrails": list, "completion_args": dict,
                                                "deployment_chat": lambda: False}


@dataclass(frozen=True)
class AgentSelection:
    """The agents list's filters, on each agent's active version (each one empty: no filter)."""

    name: str | None = None  # exactly this name
    search: str | None = None  # a case-insensitive part of the name, or of the id
    agent_id: str | None = None
    sources: frozenset[str] = frozenset()  # agents made through this API are all "api"
    deployment_chat: bool | None = None
    metadata: dict[str, Any] | None = None

    def narrows(self) -> bool:
        return bool(self.name or self.search or self.agent_id or self.sources or self.metadata
                    or self.deployment_chat is not None)

    def keeps(self, agent_id: str, version: AgentVersion) -> bool:
        wanted = self.search.casefold() if self.search else None
        return ((not self.name or version.name == self.name)
                and (not wanted or wanted in version.name.casefold() or wanted in agent_id.casefold())
                and (not self.agent_id or agent_id == self.agent_id)
                and (not self.sources or AGENT_SOURCE in self.sources)
                and (self.deployment_chat is None or version.deployment_chat == self.deployment_chat)
                and (not self.metadata or metadata_matches(version.metadata, self.metadata)))


class AgentService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _head(self, ws: str, agent_id: str) -> AgentHead:
        head = self.store.get_agent_head(ws, agent_id)
        if head is None:
            raise NotFound(f"Agent {agent_id} not found", param="agent_id")
        return head

    def _version(self, ws: str, agent_id: str, version: int) -> AgentVersion:
        # Versions count from 0; a number past any store's integers (SQLite's are 64-bit) names none.
        found = self.store.get_agent_version(ws, agent_id, version) if 0 <= version < 2**63 else None
        if found is None:
            raise NotFound(f"Agent {agent_id} has no version {version}", param="version")
        return found

    def resolve_version(self, ws: str, agent_id: str, selector: int | str | None) -> tuple[AgentHead, AgentVersion]:
        """The agent and the version a selector names: None (active), a number, or an alias."""
        head = self._head(ws, agent_id)
        if selector is None:
            return head, self._version(ws, agent_id, head.active_version)
        if isinstance(selector, str) and not selector.lstrip("-").isdigit():
            alias = self.store.get_alias(ws, agent_id, selector)
            if alias is None:
                raise NotFound(f"Agent {agent_id} has no alias {selector!r}", param="agent_version")
            return head, self._version(ws, agent_id, alias.version)
        return head, self._version(ws, agent_id, int(selector))

    def create(self, ws: str, request: CreateAgentRequest) -> dict[str, Any]:
        self._check_handoffs(ws, request.handoffs)
        moment = now()
        agent_id = new_id("ag_")
        fields = request.model_dump(exclude_none=True, by_alias=True)  # json_schema's "schema" keeps its name
        version = AgentVersion(id=agent_id, version=0, created_at=moment, **fields)
        head = AgentHead(id=agent_id, active_version=0, latest_version=0, created_at=moment, updated_at=moment)
        self.store.create_agent(ws, head, version)
        return agent_response(head, version)

    def update(self, ws: str, agent_id: str, request: UpdateAgentRequest) -> dict[str, Any]:
        head, current = self.resolve_version(ws, agent_id, None)
        changes = request.model_dump(exclude_unset=True)
        self._check_handoffs(ws, request.handoffs)
        moment = now()
        base = current.model_dump(by_alias=True)
        base.update({k: getattr(request, k) for k in changes if k not in KEPT_WHEN_NULL or changes[k] is not None})
        base.update({k: AGENT_DEFAULTS[k]() for k in changes if changes[k] is None and k in AGENT_DEFAULTS})
        base.update(version=head.latest_version + 1, created_at=moment, version_message=request.version_message)
        version = AgentVersion.model_validate(base)
        new_head = head.model_copy(update={"active_version": version.version, "latest_version": version.version,
                                           "updated_at": moment})
        self.store.add_agent_version(ws, new_head, version, expected_latest=head.latest_version)
        return agent_response(new_head, version)

    def get(self, ws: str, agent_id: str, selector: int | str | None = None) -> dict[str, Any]:
        head, version = self.resolve_version(ws, agent_id, selector)
        return agent_response(head, version, as_version=selector is not None)

    def switch_version(self, ws: str, agent_id: str, version_number: int | None) -> dict[str, Any]:
        if version_number is None:
            raise InvalidRequest("version is required (query parameter or body)", param="version")
        head = self._head(ws, agent_id)
        version = self._version(ws, agent_id, version_number)
        new_head = head.model_copy(update={"active_version": version_number, "updated_at": now()})
        self.store.set_active_version(ws, new_head)
        return agent_response(new_head, version)

    def list_versions(self, ws: str, agent_id: str, page: int, page_size: int) -> list[dict[str, Any]]:
        head = self._head(ws, agent_id)
        versions = sorted(self.store.list_agent_versions(ws, agent_id), key=lambda v: v.version, reverse=True)
        return [agent_response(head, v, as_version=True) for v in versions[page * page_size : (page + 1) * page_size]]

    def list_page(self, ws: str, page: int, page_size: int,
                  selection: AgentSelection | None = None) -> list[dict[str, Any]]:
        versions: dict[str, AgentVersion] = {}
        heads = offset_page(lambda limit, token: self.store.list_agents(ws, limit, token), page, page_size,
                            keep=self._keep(ws, selection, versions))
        return [self._render_head(ws, head, versions) for head in heads]

    def list_tokens(self, ws: str, page_size: int, page_token: str | None,
                    selection: AgentSelection | None = None) -> dict[str, Any]:
        """A page of the store's order; with filters it may hold fewer than ``page_size`` agents,
        and the token still leads on through the rest."""
        batch = self.store.list_agents(ws, page_size, page_token)
        versions: dict[str, AgentVersion] = {}
        keep = self._keep(ws, selection, versions) or (lambda _: True)
        return {"object": "list", "data": [self._render_head(ws, h, versions) for h in batch.items if keep(h)],
                "next_page_token": batch.next_token}

    def _keep(self, ws: str, selection: AgentSelection | None,
              versions: dict[str, AgentVersion]) -> Callable[[AgentHead], bool] | None:
        """The filter on each agent's active version; the versions it reads are kept in
        ``versions``, so that rendering the agents it keeps reads none of them again."""
        if selection is None or not selection.narrows():
            return None

        def keep(head: AgentHead) -> bool:
            version = versions[head.id] = self._version(ws, head.id, head.active_version)
            return selection.keeps(head.id, version)
        return keep

    def _render_head(self, ws: str, head: Any, versions: dict[str, AgentVersion] | None = None) -> dict[str, Any]:
        version = (versions or {}).get(head.id) or self._version(ws, head.id, head.active_version)
        return agent_response(head, version)

    def delete(self, ws: str, agent_id: str) -> None:
        self._head(ws, agent_id)
        self.store.delete_agent(ws, agent_id)

    def put_alias(self, ws: str, agent_id: str, alias: str, version_number: int) -> dict[str, Any]:
        self._head(ws, agent_id)
        self._version(ws, agent_id, version_number)
        existing = self.store.get_alias(ws, agent_id, alias)
        moment = now()
        record = AgentAlias(alias=alias, version=version_number,
                            created_at=existing.created_at if existing else moment, updated_at=moment)
        self.store.put_alias(ws, agent_id, record)
        return record.to_api()

    def list_aliases(self, ws: str, agent_id: str) -> list[dict[str, Any]]:
        self._head(ws, agent_id)
        return [a.to_api() for a in self.store.list_aliases(ws, agent_id)]

    def delete_alias(self, ws: str, agent_id: str, alias: str) -> None:
        self._head(ws, agent_id)
        if not self.store.delete_alias(ws, agent_id, alias):
            raise NotFound(f"Agent {agent_id} has no alias {alias!r}", param="alias")

    def _check_handoffs(self, ws: str, handoffs: list[str] | None) -> None:
        for target in handoffs or []:
            if self.store.get_agent_head(ws, target) is None:
                raise InvalidRequest(f"handoffs: agent {target} not found", param="handoffs")
