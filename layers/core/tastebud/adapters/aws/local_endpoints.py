"""Point the functions' AWS clients at local stand-ins (`sam local`, docs/DEPLOY.md "Run the functions locally").

Two settings, empty in a deployed stack: ``TASTEBUD_AWS_ENDPOINT_URL`` (every AWS API the functions call, e.g. a
moto server) and ``TASTEBUD_SAGEMAKER_RUNTIME_URL`` (InvokeEndpoint only). They become boto3's own
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` variables, so every client, whichever module builds
it, follows them. ``sam local`` can only override variables the template declares, which is why these exist
instead of boto3's names (an empty ``AWS_ENDPOINT_URL`` would break every client).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SETTINGS = {"TASTEBUD_AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
            "TASTEBUD_SAGEMAKER_RUNTIME_URL": "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"}


def use_local_endpoints(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Copy the set ``TASTEBUD_*_URL`` settings to boto3's variables; returns what was set (nothing when deployed)."""
    env = os.environ if environ is None else environ
    applied = {boto: env[ours] for ours, boto in SETTINGS.items() if env.get(ours)}
    env.update(applied)
    return applied


def local_endpoints_in_use(environ: MutableMapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("TASTEBUD_AWS_ENDPOINT_URL"))
