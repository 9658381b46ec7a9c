"""A preflight check's result (ok / warn / fail, what was found, the fix) and how the checks read a boto3 error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""
    # Template parameters the operator should pass to `sam deploy --parameter-overrides`.
    parameters: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def access_denied(error: ClientError) -> bool:
    return error_code(error) in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
