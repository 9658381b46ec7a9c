"""`tastebud sam-local ...`: run the Lambda functions with `sam local` on this machine, offline (docs/DEPLOY.md)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

sam_local_app = typer.Typer(no_args_is_help=True, help="`sam local` offline: base image, Docker engine, stand-ins.")

WORK_DIR = Path("build/sam-local")
READY_TIMEOUT_S = 300.0
DirOption = Annotated[Path, typer.Option("--dir", help="State directory (logs, pid files, env.json)")]


@sam_local_app.command("image")
def image(work_dir: DirOption = WORK_DIR,
          force: Annotated[bool, typer.Option("--force", help="Rebuild even when the inputs did not change")] = False,
          ) -> None:
    """Start the Docker engine if needed and build the local Lambda python3.12 base image if its inputs changed."""
    from tastebud_sam_local.base_image import ensure_image
    from tastebud_sam_local.docker_daemon import ensure_dockerd

    state = ensure_dockerd(work_dir)
    how = ("started" if state.started_now else
           "already running (started by sam-local)" if state.ours else "already running (not ours: left running)")
    typer.echo(f"sam-local-image: docker engine {how}, pid {state.pid or '?'}, bridge {state.bridge_gateway}")
    ensure_image(work_dir, force=force, say=typer.echo)


@sam_local_app.command("up")
def up(
    artifacts: Annotated[Path, typer.Option("--artifacts", help="Artifacts directory; its CURRENT version is served")],
    data: Annotated[Path, typer.Option("--data", help="Data directory whose users are seeded")],
    work_dir: DirOption = WORK_DIR,
    foreground: Annotated[bool, typer.Option("--foreground", help="Serve in this process until interrupted")] = False,
) -> None:
    """Start and seed the stand-ins on Docker's bridge address; writes <dir>/env.json for `sam local --env-vars`."""
    from tastebud_sam_local.docker_daemon import ensure_dockerd

    work_dir.mkdir(parents=True, exist_ok=True)
    ready = work_dir / "ready.json"
    if foreground:
        _serve(artifacts, data, work_dir, ensure_dockerd(work_dir).bridge_gateway, ready)
        return
    _stop_standins(work_dir)
    ensure_dockerd(work_dir)
    ready.unlink(missing_ok=True)
    log = (work_dir / "standins.log").open("ab")
    start_of_this_run = log.tell()
    command = [sys.executable, "-m", "tastebud_cli.app", "sam-local", "up", "--artifacts", str(artifacts),
               "--data", str(data), "--dir", str(work_dir), "--foreground"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)  # outlives this command, until `tastebud sam-local down`
    (work_dir / "standins.pid").write_text(str(process.pid))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = (work_dir / "standins.log").read_text(errors="replace")[-3000:]
            typer.echo(f"sam-local: the stand-ins did not start:\n{tail}", err=True)
            _stop_standins(work_dir)
            raise typer.Exit(1)
        time.sleep(0.2)
    summary = json.loads(ready.read_text())
    with (work_dir / "standins.log").open(errors="replace") as this_run:
        this_run.seek(start_of_this_run)
        lines = this_run.read().splitlines()
    for line in lines:
        if line.startswith("sam-local:"):  # what was seeded
            typer.echo(line)
    typer.echo(f"sam-local: stand-ins up (pid {process.pid}, log {work_dir / 'standins.log'}); "
               f"settings in {summary['env_vars']}")


def _serve(artifacts: Path, data: Path, work_dir: Path, host: str, ready: Path) -> None:
    from tastebud.artifacts import LocalArtifactStore
    from tastebud_sam_local.standins import start_standins

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    standins = start_standins(host, LocalArtifactStore(artifacts).current_dir(), data, work_dir,
                              say=lambda line: print(line, flush=True))
    try:
        env_vars = standins.env_vars_file(work_dir / "env.json")
        standins.index_task_events(work_dir / "events")
        ready.write_text(json.dumps({"env_vars": str(env_vars), "live": standins.live, "pid": os.getpid()}))
        print(f"sam-local: serving on {host}; the functions' settings are in {env_vars}", flush=True)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        ready.unlink(missing_ok=True)
        standins.close()


@sam_local_app.command("down")
def down(work_dir: DirOption = WORK_DIR,
         keep_docker: Annotated[bool, typer.Option("--keep-docker", help="Leave the Docker engine running")] = False,
         ) -> None:
    """Stop the stand-ins, and the Docker engine when `image` or `up` started it."""
    from tastebud_sam_local.docker_daemon import stop_dockerd

    typer.echo(f"sam-local: stand-ins {'stopped' if _stop_standins(work_dir) else 'were not running'}")
    if not keep_docker:
        typer.echo(f"sam-local: docker engine {'stopped' if stop_dockerd(work_dir) else 'left as it was'}")


def _stop_standins(work_dir: Path, timeout_s: float = 20.0) -> bool:
    pid_file = work_dir / "standins.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # reap our own child when `up` and `down` share a process
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True
