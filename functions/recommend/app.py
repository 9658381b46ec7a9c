"""API Gateway HTTP API -> the Tastebud recommendation service (POST /v1/recommendations, GET /health).

The service is built in the Lambda INIT phase and follows LIVE.json (tastebud.composition.deployed_api).
"""

from __future__ import annotations

from tastebud.composition.deployed_api import deployed_api_handler

handler = deployed_api_handler()
