"""A server process for the lost-SIGTERM test: `tastebud.http_server.prefork.serve` whose workers take ``FORK_S``
between the fork and their own signal handlers (a slow ``after_fork``). Run as ``python -m slow_fork_server DIR``:
DIR/forked-<pid> appears when a worker is inside that window.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from slow_handler_server import make_factory

from tastebud.http_server.prefork import ServerOptions, serve

FORK_S = 2.0
GRACEFUL_TIMEOUT_S = 20


def main(marker_dir: Path) -> None:
    def after_fork() -> None:
        (marker_dir / f"forked-{os.getpid()}").touch()
        time.sleep(FORK_S)

    def announce(url: str) -> None:
        print(f"listening on {url}", file=sys.stderr, flush=True)

    serve(make_factory(marker_dir), ServerOptions(port=0, workers=1, access_log=False, log_level="info",
                                                  graceful_timeout_s=GRACEFUL_TIMEOUT_S),
          after_fork=after_fork, on_ready=announce)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
