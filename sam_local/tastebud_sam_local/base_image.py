"""The local stand-in for Lambda's Python 3.12 base image, built offline (no registry image can be pulled here).

SAM only needs an image tagged as its base (``public.ecr.aws/lambda/python:3.12-x86_64``) and adds the runtime
interface emulator from its own wheel. This builds one from a Debian bookworm root (``debootstrap`` from the
Debian mirror, with the shared libraries CPython's modules link), this machine's CPython 3.12 under ``/var/lang``
(where Lambda keeps it), and ``awslambdaric`` + ``boto3`` (requirements/sam-local-image.txt) in ``/var/runtime``,
started by ``/var/runtime/bootstrap`` as the runtime interface emulator expects. The image carries the hash of
its inputs (``TASTEBUD_IMAGE_INPUTS``), so a rebuild happens only when an input changed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tastebud_sam_local.docker_daemon import docker

IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What CPython 3.12's extension modules link beyond libc (ssl, ctypes, sqlite3, bz2, lzma, zlib, pyexpat,
# curses, readline, uuid, crypt) + CA certificates.
PACKAGES = ("libssl3", "libffi8", "libsqlite3-0", "libbz2-1.0", "liblzma5", "zlib1g", "libexpat1", "libncursesw6",
            "libreadline8", "libuuid1", "libcrypt1", "ca-certificates")
PYTHON_SKIP = ("lib/python3.12/test", "lib/python3.12/idlelib", "lib/python3.12/tkinter", "lib/python3.12/turtledemo",
               "lib/python3.12/site-packages", "lib/python3.12/ensurepip")
ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "requirements" / "sam-local-image.txt"

# Lambda's documented variables and search path for Python: the function, then the layer, then the runtime's SDK.
ENVIRONMENT = {
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
BOOTSTRAP = """#!/bin/sh
# Started by the runtime interface emulator with _HANDLER set (module.function).
export PYTHONPATH="/var/task:/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime"
exec /var/lang/bin/python3.12 -m awslambdaric "$_HANDLER"
"""
ENTRYPOINT = """#!/bin/sh
# `docker run` of the bare image: serve the handler named in CMD through the emulator when one is mounted.
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ] && [ -x /var/rapid/aws-lambda-rie ]; then
  exec /var/rapid/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
"""


def python312() -> Path:
    """This machine's CPython 3.12 (the one `make sam-build` builds the layer with)."""
    found = shutil.which("python3.12")
    candidates = [Path(found)] if found else []
    candidates += sorted(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3.12"), reverse=True)
    for candidate in candidates:
        resolved = _real_python(candidate)
        if resolved is not None:
            return resolved
    raise FileNotFoundError("no CPython 3.12 found (python3.12 on PATH or under ~/.pyenv/versions)")


def _real_python(candidate: Path) -> Path | None:
    """The interpreter behind a pyenv shim or symlink, or None when it does not run."""
    try:
        out = subprocess.run([str(candidate), "-c", "import sys; print(sys.executable)"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    return Path(out).resolve() if out else None


def inputs_digest(python: Path) -> str:
    """What the image is made of: a change to any of these rebuilds it."""
    version = subprocess.run([str(python), "-VV"], capture_output=True, text=True, check=True).stdout.strip()
    parts = [IMAGE, SUITE, MIRROR, " ".join(PACKAGES), " ".join(PYTHON_SKIP), str(python), version,
             PINS.read_text(), BOOTSTRAP, ENTRYPOINT, repr(sorted(ENVIRONMENT.items()))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def image_digest() -> str | None:
    """The inputs digest of the image under ``IMAGE``, or None when there is none (or another image has the tag)."""
    try:
        env = docker("image", "inspect", "--format", "{{json .Config.Env}}", IMAGE, timeout=30)
    except Exception:
        return None
    for entry in _json_list(env):
        if entry.startswith("TASTEBUD_IMAGE_INPUTS="):
            return entry.split("=", 1)[1]
    return None


def _json_list(text: str) -> list[str]:
    import json

    value = json.loads(text or "null")
    return [str(v) for v in value] if isinstance(value, list) else []


def ensure_image(work_dir: Path, *, force: bool = False, say: Callable[[str], None] = print) -> bool:
    """Build and tag the base image unless one with the same inputs exists; True when it was (re)built."""
    python = python312()
    digest = inputs_digest(python)
    if not force and image_digest() == digest:
        say(f"sam-local-image: {IMAGE} is up to date (inputs {digest})")
        return False
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="rootfs-") as scratch:
        root = Path(scratch) / "root"
        say(f"sam-local-image: debootstrap {SUITE} (minbase + {len(PACKAGES)} libraries) from {MIRROR}")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR])
        _slim(root)
        say(f"sam-local-image: CPython {python} -> /var/lang")
        _copy_python(python, root / "var" / "lang")
        say(f"sam-local-image: {', '.join(_pins())} -> /var/runtime")
        _run([str(python), "-m", "pip", "install", "-q", "--no-compile", "--only-binary=:all:",
              "--disable-pip-version-check", "--root-user-action=ignore",
              "--target", str(root / "var" / "runtime"), "-r", str(PINS)])
        _write_runtime_files(root)
        archive = Path(scratch) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], check=True)
        changes = [f"ENV {name}={value}" for name, value in ENVIRONMENT.items()]
        changes += [f"ENV TASTEBUD_IMAGE_INPUTS={digest}", "WORKDIR /var/task",
                    'ENTRYPOINT ["/lambda-entrypoint.sh"]']
        args = ["import"]
        for change in changes:
            args += ["--change", change]
        docker(*args, str(archive), IMAGE, timeout=900)
    say(f"sam-local-image: built {IMAGE} (inputs {digest})")
    return True


def _run(command: list[str]) -> None:
    """Run a build step quietly; its output only when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr[-4000:])


def _pins() -> list[str]:
    return [line.strip() for line in PINS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _slim(root: Path) -> None:
    """Documentation, manuals and apt's downloaded packages serve nothing in a function's container."""
    for sub in ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt/archives"):
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir(parents=True, exist_ok=True)


def _copy_python(python: Path, target: Path) -> None:
    prefix = python.parent.parent
    skip = {prefix / s for s in PYTHON_SKIP}

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(directory, n) in skip or n == "__pycache__"]

    shutil.copytree(prefix, target, symlinks=True, ignore=ignore)
    (target / "lib" / "python3.12" / "site-packages").mkdir(parents=True, exist_ok=True)


def _write_runtime_files(root: Path) -> None:
    runtime_files = ((root / "var" / "runtime" / "bootstrap", BOOTSTRAP), (root / "lambda-entrypoint.sh", ENTRYPOINT))
    for path, text in runtime_files:
        path.write_text(text)
        path.chmod(0o755)
    for directory in ("var/task", "opt"):
        (root / directory).mkdir(parents=True, exist_ok=True)
