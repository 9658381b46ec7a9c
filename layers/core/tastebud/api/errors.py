"""The API's error bodies and the exception handlers that map the service's errors to status codes.

Every error, whichever layer raises it, answers ``{"error": {"code", "message", "field"?}}``; a bad request names
its field; an outage is a 503 with Retry-After; anything unexpected is a logged 500 with no internals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from tastebud.api.models import ErrorResponse
from tastebud.api.request_guard import Rejection, allowed_methods
from tastebud.errors import BadRequestError, DependencyError, NotFoundError, TastebudError
from tastebud.version_follower import VersionRefusedError

logger = Logger(service="tastebud")


class UnsupportedError(TastebudError):
    """The route exists, but not on this backend."""


def error_body(code: str, message: str, field: str | None = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return json.dumps({"error": error})


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=error_body(code, message, field), headers=headers)


def rejection_result(rejection: Rejection) -> dict[str, Any]:
    """The API Gateway v2 result for a request refused before routing (see request_guard)."""
    return {"statusCode": int(rejection.status), "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": error_body(rejection.code, rejection.message, rejection.field), "isBase64Encoded": False}


def error_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI responses of a route: 200 (its model comes from the route's return annotation, because the entry
    has no "content") and our error body for each of ``statuses`` (replaces Powertools' default 422 shape)."""
    descriptions = {400: "Invalid request; `error.field` names the offending field", 404: "Not found",
                    409: "The artifact version was refused (failed to load or its smoke test); the old one serves",
                    501: "Not available on this backend",
                    503: "A backing service is unavailable or the service is not ready"}
    errors = {status: {"description": descriptions[status],
                       "content": {"application/json": {"model": ErrorResponse}}} for status in statuses}
    return {200: {"description": "Success"}, **errors}


def _field_of(location: Sequence[Any]) -> str:
    """Pydantic error location -> dotted request field (drops the 'body' prefix and model names)."""
    parts = [str(p) for p in location if p not in ("body", "path", "query")]
    return ".".join(parts) or "body"


def on_validation_error(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    kind = str(first.get("type", "invalid"))
    if kind.startswith("json"):
        return error_response(HTTPStatus.BAD_REQUEST, "invalid_json", "request body is not valid JSON", "body")
    field = _field_of(first.get("loc", ()))
    message = f"{field}: {first.get('msg', 'invalid value')}"
    return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", message, field)


def on_bad_request(exc: BadRequestError) -> Response:
    return error_response(HTTPStatus.BAD_REQUEST, exc.code, exc.message, exc.field)


def on_not_found(exc: NotFoundError) -> Response:
    return error_response(HTTPStatus.NOT_FOUND, "not_found", exc.message, exc.field)


def on_version_refused(exc: VersionRefusedError) -> Response:
    return error_response(HTTPStatus.CONFLICT, "version_refused", str(exc), "version")


def on_unsupported(exc: UnsupportedError) -> Response:
    return error_response(HTTPStatus.NOT_IMPLEMENTED, "not_implemented", str(exc))


def on_dependency_error(exc: DependencyError) -> Response:
    # An outage, not a bug: one line without a stack. Nothing was applied (a write is acknowledged only once
    # durable), so the client retries after Retry-After: an open circuit's next probe, else a second.
    logger.warning("backing service unavailable: %s", exc)
    retry_after = max(1, math.ceil(exc.retry_after_s or 1))
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", f"{exc.stage} is unavailable; retry",
                          headers={"Retry-After": str(retry_after)})


def on_not_ready(exc: TastebudError) -> Response:
    # Missing/mismatched artifacts or settings: the deployment is broken, not the request.
    logger.exception("service not ready")
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "not_ready", "the recommendation service is not ready")


def on_unexpected(exc: Exception) -> Response:
    logger.exception("unexpected error")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", "internal error; it has been logged")


# Most specific first (Powertools looks a type up along its MRO, so a subclass's handler wins either way).
HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (RequestValidationError, on_validation_error), (BadRequestError, on_bad_request), (NotFoundError, on_not_found),
    (VersionRefusedError, on_version_refused), (UnsupportedError, on_unsupported),
    (DependencyError, on_dependency_error), (TastebudError, on_not_ready), (Exception, on_unexpected))


def handle_errors(app: APIGatewayHttpResolver) -> None:
    """Register the handlers above on ``app``, and the answer to a route that does not exist (404 or 405)."""
    for exc_class, handler in HANDLERS:
        app.exception_handler(exc_class)(handler)

    @app.not_found
    def on_unknown_route(exc: Exception) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            return error_response(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                                  f"{event.http_method} is not allowed here; use {', '.join(allowed)}",
                                  headers={"Allow": ", ".join(allowed)})
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such route")
