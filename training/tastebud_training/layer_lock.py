"""The Lambda layer's lock: the exact wheels CoreLayer holds on the python3.12 x86_64 runtime, and its size budget.

``layers/core/requirements.txt`` names what serving needs, with compatible-release pins (the dev venv installs it
too). Resolved loosely for Lambda it pulled ~248 MB: grpcio (opensearch-py's optional gRPC transport),
huggingface_hub + hf_xet (tokenizers' ``from_pretrained`` download) and a second botocore (aws-xray-sdk), against
Lambda's 262,144,000 bytes for function + layers. This module resolves the requirements with pip for Lambda's
platform, leaves out the subtrees that serving never imports (``EXCLUDED``, each with the reason), and writes
``layers/core/requirements-lambda.lock`` with sha256 hashes. The layer is built from the lock only
(``pip install --no-deps --require-hashes``; ``layers/core/Makefile``, ``BuildMethod: makefile``), so what is
deployed is what tests/aws/test_layer_lock.py installed, imported and measured.

    python -m tastebud_training.layer_lock lock            # re-resolve and write the lock (make layer-lock)
    python -m tastebud_training.layer_lock install DIR     # the layer's python/ folder from the lock
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "layers" / "core" / "requirements.txt"
LOCK = ROOT / "layers" / "core" / "requirements-lambda.lock"
# Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34) on x86_64: any manylinux wheel up to 2_34 loads there.
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# The budget, with headroom below Lambda's 262,144,000 bytes (function code + all layers, unzipped).
LAYER_BUDGET_BYTES = 230_000_000
# What the layer leaves out, and why (a package and everything only it pulls in).
EXCLUDED: Mapping[str, str] = {
    "botocore": "the python3.12 runtime provides boto3/botocore; aws-xray-sdk only patches the runtime's",
    "opensearch-protobufs": "opensearch-py's gRPC transport (grpcio); the adapters talk HTTP (RequestsHttpConnection)",
    "huggingface-hub": "tokenizers' from_pretrained download (hf_xet, fsspec, httpx); serving loads tokenizer.json "
                       "from the artifact with Tokenizer.from_file",
}
# The import test's stand-in for the runtime's own SDK (the runtime's version varies by region and date).
RUNTIME_PROVIDED = ("boto3==1.40.4",)


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str
    requires_dist: tuple[str, ...]  # the wheel's Requires-Dist, markers and extras included

    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def _platform_args() -> list[str]:
    args = ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def _lambda_environment() -> dict[str, str]:
    env: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    env.update(python_version=PYTHON_VERSION, python_full_version=f"{PYTHON_VERSION}.0", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", implementation_name="cpython",
               platform_python_implementation="CPython", os_name="posix")
    return env


def resolve(requirement_args: list[str], *, pip: str = sys.executable) -> dict[str, Pin]:
    """pip's own resolution for Lambda's platform (a dry run with ``--report``), by canonical name."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run([pip, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--no-cache-dir",
                        "--target", str(Path(scratch) / "target"), "--report", str(report), *_platform_args(),
                        *requirement_args], check=True)
        installs = json.loads(report.read_text())["install"]
    pins: dict[str, Pin] = {}
    for entry in installs:
        metadata = entry["metadata"]
        name = canonicalize_name(metadata["name"])
        pins[name] = Pin(name, metadata["version"], entry["download_info"]["archive_info"]["hashes"]["sha256"],
                         tuple(metadata.get("requires_dist") or ()))
    return pins


def top_level(requirements: Path = REQUIREMENTS) -> dict[str, Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    found: dict[str, Requirement] = {}
    for line in lines:
        if line:
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def prune(pins: Mapping[str, Pin], roots: Iterable[Requirement], excluded: Iterable[str] = EXCLUDED) -> dict[str, Pin]:
    """The pins reachable from ``roots`` (with their extras, on Lambda's python3.12) without entering an excluded
    package."""
    skip = {canonicalize_name(name) for name in excluded}
    env = _lambda_environment()
    kept: dict[str, Pin] = {}
    seen: set[tuple[str, str]] = set()
    stack = [(canonicalize_name(root.name), frozenset(root.extras)) for root in roots]
    while stack:
        name, extras = stack.pop()
        if name in skip:
            continue
        kept[name] = pins[name]
        for extra in {"", *extras}:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for text in pins[name].requires_dist:
                requirement = Requirement(text)
                if requirement.marker is None or requirement.marker.evaluate({**env, "extra": extra}):
                    stack.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return kept


def render(pins: Mapping[str, Pin]) -> str:
    header = [
        "# CoreLayer for AWS Lambda python3.12 x86_64: exact wheels with hashes, installed with --no-deps.",
        "# Generated by `make layer-lock` (python -m tastebud_training.layer_lock lock) from requirements.txt;",
        "# left out on purpose (tastebud_training.layer_lock.EXCLUDED): " + ", ".join(sorted(EXCLUDED)) + ".",
    ]
    return "\n".join(header + [pins[name].line() for name in sorted(pins)]) + "\n"


def read_lock(lock: Path = LOCK) -> dict[str, tuple[str, str]]:
    """``{canonical name: (version, sha256)}`` of the lock file."""
    pins: dict[str, tuple[str, str]] = {}
    for line in lock.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, _, digest = line.partition(" --hash=sha256:")
        name, _, version = spec.partition("==")
        pins[canonicalize_name(name)] = (version, digest.strip())
    return pins


def lock(out: Path = LOCK) -> dict[str, Pin]:
    pins = prune(resolve(["-r", str(REQUIREMENTS)]), top_level().values())
    out.write_text(render(pins))
    return pins


def install(target: Path, lock_file: Path = LOCK, *, pip: str = sys.executable) -> None:
    """The layer's site-packages exactly as locked: no resolution, every wheel checked against its hash."""
    subprocess.run([pip, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--target", str(target),
                    *_platform_args(), "-r", str(lock_file)], check=True)


def tree_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lock", help=f"re-resolve {REQUIREMENTS.name} for Lambda and write {LOCK.name}")
    install_parser = commands.add_parser("install", help="install the lock into TARGET (the layer's python/ folder)")
    install_parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if args.command == "lock":
        pins = lock()
        print(f"{LOCK.relative_to(ROOT)}: {len(pins)} packages")
    else:
        install(args.target)
        size, budget = tree_bytes(args.target) / 1e6, LAYER_BUDGET_BYTES / 1e6
        print(f"{args.target}: {size:.1f} MB unzipped (budget {budget:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
