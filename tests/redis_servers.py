"""Debian's ``redis-server`` for tests: plain TCP, or configured the way ElastiCache serves the stock cache.

ElastiCache (template.yaml ``StockCache``) has in-transit encryption and an AUTH token: TLS only, no plaintext
port, a password on every connection, and a certificate that clients verify against their trust store. It also
disables the commands that need administrative rights (AWS docs, "Restricted Redis OSS commands"): renaming them
to nothing here makes a client that relied on one fail as it would on AWS.

The certificates are a throwaway CA and a server certificate for ``localhost`` / 127.0.0.1, made per test session.
``make test`` installs redis-server (Makefile ``$(REDIS_SERVER)``); a test never skips because it is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import re
import secrets
import signal
import socket
import ssl
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tastebud.composition.aws import AwsClients, build_clients
from tastebud.processes import end_with_parent
from tastebud.settings import Settings

REDIS_SERVER = Path("/usr/bin/redis-server")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# ElastiCache's restricted commands (those a Redis OSS 7 server knows); a renamed-to-"" command does not exist.
ELASTICACHE_RESTRICTED_COMMANDS = ("BGREWRITEAOF", "BGSAVE", "CONFIG", "DEBUG", "MIGRATE", "PSYNC", "REPLCONF",
                                   "REPLICAOF", "SAVE", "SLAVEOF", "SHUTDOWN", "SYNC")


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def make_tls_files(directory: Path, *, ca_name: str = "Tastebud test CA",
                   hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TlsFiles:
    """A CA and a server certificate it signs, valid for ``hosts`` (names and IP addresses) for one day.

    Extensions as a public CA issues them (key identifiers, key usage, serverAuth), so that OpenSSL's strict
    verification (Python 3.13's default) accepts the chain for the right reason.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject).issuer_name(ca_subject).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_subject).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, files.server_key)
    return files


def auth_token_like(generate: dict[str, Any]) -> str:
    """A password as Secrets Manager's ``GenerateSecretString`` makes it (length, excluded punctuation)."""
    alphabet = string.ascii_letters + string.digits
    if not generate.get("ExcludePunctuation", False):
        alphabet += string.punctuation
    alphabet = "".join(c for c in alphabet if c not in generate.get("ExcludeCharacters", ""))
    return "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))


@dataclass
class RedisServer:
    """A running redis-server; ``tls`` and ``password`` are set when it runs like ElastiCache."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    tls: TlsFiles | None = None
    password: str | None = None

    def url(self, host: str = "localhost", db: int = 0) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{host}:{self.port}/{db}"

    def log_tail(self) -> str:
        log = self.directory / "redis.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.is_file() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills redis-server if pytest dies without tearing down."""
    end_with_parent(signal.SIGKILL)


def _answers_ping(server: RedisServer) -> bool:
    """One raw PING (AUTH first when needed) over TCP or TLS; True on a reply, False while it is starting."""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1.0) as raw:
            sock: socket.socket = raw
            if server.tls is not None:
                context = ssl.create_default_context(cafile=str(server.tls.ca_cert))
                sock = context.wrap_socket(raw, server_hostname="localhost")
            request = b"PING\r\n" if server.password is None else f"AUTH {server.password}\r\nPING\r\n".encode()
            sock.sendall(request)
            reply = b""
            while b"PONG" not in reply and not reply.startswith(b"-"):
                chunk = sock.recv(256)
                if not chunk:
                    return False
                reply += chunk
            return b"PONG" in reply
    except OSError:  # refused while starting, or a TLS handshake cut short
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # with --save "" it exits without writing anything
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def run_redis_server(directory: Path, *, tls: TlsFiles | None = None, password: str | None = None,
                     bind: tuple[str, ...] = ("127.0.0.1",),
                     disabled_commands: tuple[str, ...] = ()) -> Iterator[RedisServer]:
    """Start redis-server in ``directory`` (no persistence) and stop it on exit, also when the body raises."""
    if not REDIS_SERVER.is_file():
        raise RuntimeError(f"{REDIS_SERVER} is missing: `make test` installs it (apt-get install redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):  # the free port may be taken between choosing it and the server binding it
        port = _free_port()
        args = [str(REDIS_SERVER), "--bind", *bind, "--save", "", "--appendonly", "no", "--dir", str(directory),
                "--logfile", str(directory / "redis.log"), "--daemonize", "no"]
        if tls is None:
            args += ["--port", str(port)]
        else:
            args += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(tls.server_cert),
                     "--tls-key-file", str(tls.server_key), "--tls-ca-cert-file", str(tls.ca_cert),
                     "--tls-auth-clients", "no"]
        if password is not None:
            args += ["--requirepass", password]
        for command in disabled_commands:
            args += ["--rename-command", command, ""]  # an empty name: the command no longer exists
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent)
        server = RedisServer(process, port, directory, tls, password)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while process.poll() is None and not _answers_ping(server):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_S} s:\n{server.log_tail()}")
                time.sleep(0.02)
            if process.poll() is not None:
                if "Address already in use" in server.log_tail() and attempt < 2:
                    continue
                raise RuntimeError(f"redis-server exited with {process.returncode}:\n{server.log_tail()}")
            yield server
            return
        finally:
            _stop(process)
    raise RuntimeError("redis-server found no free port")


# -- the stock cache as template.yaml deploys it ---------------------------------------------------------------------

_DYNAMIC_SECRET = re.compile(r"^\{\{resolve:secretsmanager:\$\{(?P<secret>\w+)\}:SecretString:(?P<key>[^:}]*)\}\}$")


@dataclass(frozen=True)
class StockCacheDeployment:
    """What template.yaml gives the replication group and the serving functions, rendered for a local server.

    ``secret_string`` is what Secrets Manager stores for ``GenerateSecretString``; ``auth_token`` is what the
    replication group's ``AuthToken`` dynamic reference resolves to from it (None without AUTH); ``url`` is the
    functions' ``TASTEBUD_REDIS_URL`` with the primary endpoint's address and port filled in.
    """

    transit_encryption: bool
    secret_string: str
    auth_token: str | None
    url_template: str

    def url(self, address: str, port: int) -> str:
        return (self.url_template.replace("${StockCache.PrimaryEndPoint.Address}", address)
                .replace("${StockCache.PrimaryEndPoint.Port}", str(port)))


def stock_cache_deployment(template: dict[str, Any]) -> StockCacheDeployment:
    resources = template["Resources"]
    cache = resources["StockCache"]["Properties"]
    urls = {json.dumps(props["Environment"]["Variables"]["TASTEBUD_REDIS_URL"])
            for props in (r.get("Properties", {}) for r in resources.values())
            if "TASTEBUD_REDIS_URL" in props.get("Environment", {}).get("Variables", {})}
    assert len(urls) == 1, f"the serving functions disagree on TASTEBUD_REDIS_URL: {urls}"
    url = json.loads(urls.pop())
    url_template = url["Fn::Sub"] if isinstance(url, dict) else str(url)
    auth_token = None
    secret_string = ""
    if "AuthToken" in cache:
        reference = cache["AuthToken"]
        match = _DYNAMIC_SECRET.match(reference["Fn::Sub"] if isinstance(reference, dict) else str(reference))
        assert match, f"StockCache AuthToken is not a Secrets Manager dynamic reference: {reference}"
        generate = resources[match["secret"]]["Properties"]["GenerateSecretString"]
        token = auth_token_like(generate)
        if "GenerateStringKey" in generate:
            document = json.loads(generate.get("SecretStringTemplate", "{}"))
            document[generate["GenerateStringKey"]] = token
            secret_string = json.dumps(document)
        else:
            secret_string = token
        # {{resolve:...:SecretString:}} is the whole string; a key selects a field of a JSON secret.
        auth_token = json.loads(secret_string)[match["key"]] if match["key"] else secret_string
    return StockCacheDeployment(bool(cache.get("TransitEncryptionEnabled", False)), secret_string, auth_token,
                                url_template)


# -- the AWS composition's client on it --------------------------------------------------------------------------

REGION = "eu-west-1"
# The rest of the serving functions' environment: names only, no call reaches these resources.
SERVING_ENV = {
    "TASTEBUD_BACKEND": "aws",
    "TASTEBUD_ARTIFACTS": "/tmp/tastebud/artifacts",
    "TASTEBUD_ARTIFACTS_S3_URI": "s3://artifacts/tastebud/",
    "TASTEBUD_OPENSEARCH_ENDPOINT": "vpc-tastebud.eu-west-1.es.amazonaws.com",
    "TASTEBUD_OPENSEARCH_INDEX_ALIAS": "items",
    "TASTEBUD_PROFILES_TABLE": "profiles",
    "TASTEBUD_HISTORY_TABLE": "history",
    "AWS_REGION": REGION,
}


@dataclass(frozen=True)
class StockCache:
    """A redis-server configured as template.yaml configures the ElastiCache replication group."""

    server: RedisServer
    deployment: StockCacheDeployment
    untrusted_ca: Path  # a CA that did not sign the server's certificate

    @property
    def trusted_ca(self) -> Path:
        assert self.server.tls is not None, "template.yaml: StockCache has no TransitEncryptionEnabled"
        return self.server.tls.ca_cert


def composed_redis_client(stock_cache: StockCache, *, address: str = "localhost",
                          secret_string: str | None = None, deadline_ms: int = 200) -> Any:
    """The ElastiCache client exactly as the AWS composition builds it (connections are made on first use).

    ``secret_string`` replaces what the AUTH token secret holds (default: the secret the server's token came from).
    ``deadline_ms`` is ``redis_timeout_ms``: the contract suites check semantics, not the 10 ms production deadline
    (tests/contract/test_aws_dependency_faults.py does), so that a busy machine's slow TLS handshake cannot fail them.
    """
    import boto3
    from moto import mock_aws

    deployment = stock_cache.deployment
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        stored = deployment.secret_string if secret_string is None else secret_string
        arn = secrets.create_secret(Name="stock-cache-auth", SecretString=stored)["ARN"]
        url = deployment.url(address, stock_cache.server.port)
        settings = Settings.from_env({**SERVING_ENV, "TASTEBUD_REDIS_URL": url, "TASTEBUD_REDIS_AUTH_SECRET_ARN": arn,
                                      "TASTEBUD_REDIS_TIMEOUT_MS": str(deadline_ms)})
        unused = object()  # only the Redis client is built here
        clients = build_clients(settings, AwsClients(s3=unused, dynamodb=unused, sagemaker_runtime=unused,
                                                     secretsmanager=secrets, opensearch=unused))
    return clients.redis


def trust_only(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    """The default trust store holds this CA file for the test: TLS connections made during it verify against it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))


