"""API Gateway HTTP API -> the Tastebud recommendation service (POST /v1/recommendations, GET /health).

The service is built in the Lambda INIT phase (not inside the first request's timeout) and follows
LIVE.json: model, index and artifacts switch together within TASTEBUD_POINTER_TTL_S seconds.
"""

from __future__ import annotations

import logging

from tastebud.api.http import create_lambda_handler
from tastebud.aws_composition import refreshing_provider
from tastebud.settings import Settings

provide = refreshing_provider(Settings.from_env)
try:
    provide()
except Exception:  # not ready yet (no LIVE.json) or a real bug: requests answer 503 and retry the build
    logging.getLogger("tastebud.init").exception("service build at init failed; requests will retry it")
handler = create_lambda_handler(provide)
