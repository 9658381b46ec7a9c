"""API Gateway HTTP API -> the Tastebud recommendation service (all /v1 routes and /health)."""

from __future__ import annotations

from tastebud.api.http import create_handler
from tastebud.composition import lazy_service
from tastebud.settings import Settings

handler = create_handler(lazy_service(Settings.from_env))
