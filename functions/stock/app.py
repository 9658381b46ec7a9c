"""API Gateway HTTP API -> stock updates (PUT /v1/stock/{item_id}); same resolver, its own scaling and IAM."""

from __future__ import annotations

from tastebud.api.http import create_lambda_handler

handler = create_lambda_handler()
