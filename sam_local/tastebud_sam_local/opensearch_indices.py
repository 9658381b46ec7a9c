"""The in-memory domain's indices (with their documents) and aliases, and the index and alias APIs."""

from __future__ import annotations

import fnmatch
from typing import Any

from tastebud_sam_local.opensearch_replies import Reply, json_reply, opensearch_error


class IndexAndAliasApi:
    """Create, HEAD/GET/DELETE index (GET with wildcards), _settings, _alias/_aliases; the indices and aliases the
    other APIs of the domain work on."""

    def __init__(self) -> None:
        self.indices: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, set[str]] = {}
        self.clock_ms = 1_760_000_000_000  # creation_date of the next index (ms), strictly increasing

    def _resolve(self, name: str) -> list[str] | None:
        if name in self.indices:
            return [name]
        members = self.aliases.get(name)
        return sorted(members) if members else None

    def _create(self, name: str, body: dict[str, Any]) -> Reply:
        if name in self.indices:
            return opensearch_error(400, "resource_already_exists_exception", f"index [{name}/x] already exists",
                                    index=name)
        self.clock_ms += 1
        settings = dict((body.get("settings") or {}).get("index") or {})
        self.indices[name] = {"body": body, "docs": {}, "settings": {**settings, "creation_date": str(self.clock_ms)}}
        return json_reply(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    def _missing(self, name: str) -> Reply:
        return opensearch_error(404, "index_not_found_exception", f"no such index [{name}]",
                                **{"resource.type": "index_or_alias", "resource.id": name, "index": name})

    def _delete(self, name: str) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        del self.indices[name]
        for members in self.aliases.values():
            members.discard(name)
        return json_reply(200, {"acknowledged": True})

    def _get_indices(self, pattern: str) -> Reply:
        """GET /<index>: a wildcard that matches nothing is ``{}`` (allow_no_indices), a missing name a 404."""
        names = [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, pattern)] if "*" in pattern else (
            self._resolve(pattern) or [])
        if not names and "*" not in pattern:
            return self._missing(pattern)
        return json_reply(200, {n: {"aliases": {a: {} for a, members in self.aliases.items() if n in members},
                               "mappings": self.indices[n]["body"].get("mappings", {}),
                               "settings": {"index": {k: str(v) for k, v in self.indices[n]["settings"].items()}}}
                           for n in names})

    def _put_settings(self, name: str, body: dict[str, Any]) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        self.indices[name]["settings"].update(body.get("index", body))
        return json_reply(200, {"acknowledged": True})

    def _get_alias(self, alias: str) -> Reply:
        members = self.aliases.get(alias)
        if not members:
            return json_reply(404, {"error": f"alias [{alias}] missing", "status": 404})
        return json_reply(200, {index: {"aliases": {alias: {}}} for index in sorted(members)})

    def _update_aliases(self, body: dict[str, Any]) -> Reply:
        for action in body["actions"]:  # all or nothing, like OpenSearch
            (kind, spec), = action.items()
            if spec["index"] not in self.indices:
                return opensearch_error(404, "index_not_found_exception", f"no such index [{spec['index']}]")
        for action in body["actions"]:
            (kind, spec), = action.items()
            members = self.aliases.setdefault(spec["alias"], set())
            (members.add if kind == "add" else members.discard)(spec["index"])
        return json_reply(200, {"acknowledged": True})
