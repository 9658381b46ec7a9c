"""Domain exceptions. Adapters translate SDK errors into these; the HTTP API maps them to responses by type."""

from __future__ import annotations


class TastebudError(Exception):
    """Base class of every error Tastebud raises on purpose."""


class BadRequestError(TastebudError):
    """The caller sent something invalid; maps to HTTP 400 and names the field."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotFoundError(TastebudError):
    """A resource named in the request does not exist (e.g. an unknown item id for a stock update)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ArtifactsMissingError(TastebudError):
    """No trained artifacts where the settings point; the message says which command builds them."""


class ArtifactMismatchError(TastebudError):
    """Artifacts disagree with each other or with this code (feature version, index vs catalog)."""


class DependencyError(TastebudError):
    """A backing service (encoder, index, ranker, stock store) failed or timed out; the stage degrades."""

    def __init__(self, stage: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.retry_after_s = retry_after_s  # when a retry may succeed (an open circuit's next probe), if known
