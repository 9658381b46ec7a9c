"""A server process for the graceful-shutdown test: `tastebud.http_server.prefork.serve` around a handler whose
GET /slow waits until its worker has received SIGTERM, then answers. Run as ``python -m slow_handler_server DIR``:
DIR/started-<pid> appears when a slow request is in flight.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from tastebud.http_server.prefork import ServerOptions, serve

WAIT_S = 60.0


def make_factory(marker_dir: Path):  # type: ignore[no-untyped-def]
    def factory():  # type: ignore[no-untyped-def]  # runs in the worker, after uvicorn installed its handlers
        terminated = threading.Event()
        uvicorn_handler = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            terminated.set()
            if callable(uvicorn_handler):
                uvicorn_handler(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if event["rawPath"] == "/slow":
                (marker_dir / f"started-{os.getpid()}").touch()
                finished = terminated.wait(WAIT_S)
                body = {"sigterm_during_request": finished}
            else:
                body = {"status": "ok"}
            return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}

        return handler

    return factory


if __name__ == "__main__":
    def announce(url: str) -> None:
        print(f"listening on {url}", file=sys.stderr, flush=True)

    serve(make_factory(Path(sys.argv[1])), ServerOptions(port=0, workers=1, access_log=False, log_level="info"),
          on_ready=announce)
