"""A Docker engine for `sam local`, started by hand (no systemd here) and without touching the host's network.

A default ``dockerd`` rewrites the host's iptables and turns on IP forwarding, and both stay after it stops.
``--iptables=false --ip6tables=false --ip-forward=false --ip-masq=false`` leave the host as it was: containers
still reach the host's own addresses on the ``docker0`` bridge (local delivery, no forwarding), which is all the
stand-ins need, and nothing outside. ``--dns 127.0.0.1`` makes any stray lookup of a real AWS host fail at once
instead of waiting for the function's timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SOCKET = Path("/var/run/docker.sock")
DOCKERD_FLAGS = ("--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
                 "--dns", "127.0.0.1")
START_TIMEOUT_S = 60.0


class DockerError(RuntimeError):
    """The Docker engine is missing, did not start, or refused a command."""


@dataclass(frozen=True)
class DaemonState:
    started_now: bool  # this call started the engine
    ours: bool  # started by `ensure_dockerd` (now or earlier), so `stop_dockerd` stops it; else left running
    pid: int | None
    bridge_gateway: str  # the host's address on docker0, which containers reach


def docker(*args: str, input_bytes: bytes | None = None, timeout: float = 600.0) -> str:
    """Run the docker client; its stdout, or DockerError with its stderr."""
    client = shutil.which("docker")
    if client is None:
        raise DockerError("no docker client on PATH: `make sam-local-image` installs docker.io")
    done = subprocess.run([client, *args], input=input_bytes, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise DockerError(f"docker {' '.join(args[:2])}: {done.stderr.decode(errors='replace').strip()[-2000:]}")
    return done.stdout.decode()


def engine_answers() -> bool:
    try:
        docker("version", "--format", "{{.Server.Version}}", timeout=10)
    except (DockerError, subprocess.TimeoutExpired):
        return False
    return True


def ensure_dockerd(state_dir: Path) -> DaemonState:
    """Use the engine that answers, or start ``dockerd`` with the host-preserving flags and wait for it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = state_dir / "dockerd.pid"
    if engine_answers():
        return DaemonState(started_now=False, ours=pid_file.is_file(), pid=_read_pid(pid_file),
                           bridge_gateway=bridge_gateway())
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        raise DockerError("dockerd not found: `make sam-local-image` installs Debian's docker.io")
    log = (state_dir / "dockerd.log").open("ab")
    process = subprocess.Popen([dockerd, *DOCKERD_FLAGS], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)  # outlives this command
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not engine_answers():
        if process.poll() is not None:
            raise DockerError(f"dockerd exited with {process.returncode}; see {state_dir / 'dockerd.log'}")
        if time.monotonic() > deadline:
            raise DockerError(f"dockerd did not answer within {START_TIMEOUT_S:.0f} s; see {state_dir / 'dockerd.log'}")
        time.sleep(0.2)
    return DaemonState(started_now=True, ours=True, pid=process.pid, bridge_gateway=bridge_gateway())


def stop_dockerd(state_dir: Path, timeout_s: float = 30.0) -> bool:
    """Stop the engine ``ensure_dockerd`` started (never one that was running before it); True when one stopped."""
    pid_file = state_dir / "dockerd.pid"
    pid = _read_pid(pid_file)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: where a container finds the stand-ins."""
    networks = json.loads(docker("network", "inspect", "bridge", timeout=10))
    for config in networks[0].get("IPAM", {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    # An engine that picked its subnet itself names no gateway: it is the bridge interface's own address.
    bridge = networks[0].get("Options", {}).get("com.docker.network.bridge.name", "docker0")
    done = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", bridge], capture_output=True, text=True,
                          check=False)
    for link in json.loads(done.stdout or "[]"):
        for address in link.get("addr_info", []):
            return str(address["local"])
    raise DockerError(f"Docker's bridge network has no gateway address (interface {bridge})")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
