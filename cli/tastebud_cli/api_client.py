"""A small client of the Tastebud HTTP API (one keep-alive connection), for the CLI's replay and upsert commands."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit


class ApiError(Exception):
    """The server answered with an error status (the message carries its JSON error)."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {error.get('message', body)}"
                         + (f" (field {error['field']})" if error.get("field") else ""))
        self.status = status
        self.body = body


@dataclass
class ApiClient:
    base_url: str
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must look like http://127.0.0.1:3000, not {self.base_url!r}")
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._connection = connection(parts.hostname, parts.port, timeout=self.timeout_s)
        self._prefix = parts.path.rstrip("/")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if payload is not None else {}
        try:
            self._connection.request(method, self._prefix + path, body=payload, headers=headers)
            response = self._connection.getresponse()
            raw = response.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            self._connection.close()  # one retry on a fresh connection (a server restart closes keep-alives)
            self._connection.request(method, self._prefix + path, body=payload, headers=headers)
            response = self._connection.getresponse()
            raw = response.read()
        document = json.loads(raw) if raw else None
        if response.status >= 400:
            raise ApiError(response.status, document)
        return document

    def post_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/events", {"events": events}))

    def put_item(self, item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PUT", f"/v1/items/{quote(item_id, safe='')}", fields))

    def close(self) -> None:
        self._connection.close()
