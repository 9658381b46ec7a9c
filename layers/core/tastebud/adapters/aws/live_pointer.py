"""The ONE live pointer of the AWS deployment: ``s3://<bucket>/<prefix>/LIVE.json``.

It names, together, what a request must use: the artifact version (catalog, ranker, manifest), the
SageMaker endpoint serving THAT version's user tower, and the concrete OpenSearch index holding THAT
version's item vectors. The index hot-swap state machine writes it in one S3 PUT (atomic per key, strongly
consistent reads) after the index is verified and the endpoint is InService; serving Lambdas re-read it
at most ``pointer_ttl`` seconds apart and refuse a pointer whose versions disagree with the manifest.

``CURRENT`` (written last by ``S3ArtifactStore.publish``) stays the "latest published candidate"; only
``LIVE.json`` decides what is served, so publishing a version never changes traffic by itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from tastebud.errors import ArtifactMismatchError, DependencyError

LIVE = "LIVE.json"


@dataclass(frozen=True)
class LivePointer:
    version: str
    model_version: str
    index_version: str
    index: str
    endpoint: str
    previous: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> LivePointer:
        try:
            document = json.loads(text)
            return cls(**{name: document[name] for name in ("version", "model_version", "index_version", "index",
                                                           "endpoint")}, previous=document.get("previous"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactMismatchError(f"unreadable {LIVE}: {exc}") from exc

    def check(self, model_version: str, index_version: str) -> None:
        """A pointer naming a model/index the manifest does not describe is never served."""
        if (model_version, index_version) != (self.model_version, self.index_version):
            raise ArtifactMismatchError(
                f"{LIVE} names model {self.model_version} / index {self.index_version} but version {self.version}'s "
                f"manifest has model {model_version} / index {index_version}")


def _key(prefix: str) -> str:
    return f"{prefix.strip('/')}/{LIVE}" if prefix.strip("/") else LIVE


def read_live(client: Any, bucket: str, prefix: str) -> LivePointer | None:
    """The live pointer, or None before the first hot swap."""
    try:
        body = client.get_object(Bucket=bucket, Key=_key(prefix))["Body"].read()
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404"):
            return None
        raise DependencyError("artifacts", f"reading s3://{bucket}/{_key(prefix)}: {exc}") from exc
    return LivePointer.from_json(body)


def write_live(client: Any, bucket: str, prefix: str, pointer: LivePointer) -> None:
    client.put_object(Bucket=bucket, Key=_key(prefix), Body=pointer.to_json().encode(),
                      ContentType="application/json")
