"""API Gateway HTTP API -> the Tastebud recommendation service (POST /v1/recommendations, GET /health)."""

from __future__ import annotations

from tastebud.api.http import create_lambda_handler

handler = create_lambda_handler()
