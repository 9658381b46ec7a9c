"""API Gateway HTTP API -> stock updates (PUT /v1/stock/{item_id}); same resolver, its own scaling and IAM.

The service is built in the Lambda INIT phase and follows LIVE.json (tastebud.composition.deployed_api).
"""

from __future__ import annotations

from tastebud.composition.deployed_api import deployed_api_handler

handler = deployed_api_handler()
