"""A real RFC 3161 TSA on loopback: a CA and a timestamping certificate made in a temporary
directory, and `openssl ts -reply` run per request behind a small HTTP server."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_tsa_files(directory: Path, name: str = "baylink test") -> Path:
    """A CA (ca.pem) and a TSA certificate it issued (tsa.pem, tsa.key, with the critical
    timeStamping extended key usage), and an `openssl ts` config; returns the config."""
    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} root CA"))
        .issuer_name(_name(f"{name} root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} TSA"))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "tsa.pem").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "tsa.key", tsa_key)
    (directory / "serial").write_text("01\n")
    config = directory / "tsa.cnf"
    config.write_text(_CONFIG.format(dir=directory))
    return config


class _Handler(BaseHTTPRequestHandler):
    server: _TsaServer

    def do_POST(self) -> None:
        query = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests += 1
        if self.server.broken:
            self._answer(500, b"broken", "text/plain")
            return
        if self.server.canned is not None:
            self._answer(200, self.server.canned, "application/timestamp-reply")
            return
        directory = self.server.directory
        (directory / "query.tsq").write_bytes(query)
        done = subprocess.run(
            [
                "openssl",
                "ts",
                "-reply",
                "-config",
                str(directory / "tsa.cnf"),
                "-queryfile",
                str(directory / "query.tsq"),
                "-out",
                str(directory / "reply.tsr"),
            ],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            self._answer(500, done.stderr, "text/plain")
            return
        self._answer(200, (directory / "reply.tsr").read_bytes(), "application/timestamp-reply")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read what they need from the server's counters."""


class _TsaServer(HTTPServer):
    def __init__(self, directory: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.directory = directory
        self.requests = 0
        self.broken = False
        self.canned: bytes | None = None


@dataclass
class LocalTsa:
    """A running TSA: its URL, the CA its certificate chains to, and switches for tests."""

    url: str
    ca_file: Path
    tsa_cert_file: Path
    _server: _TsaServer

    @property
    def requests(self) -> int:
        return self._server.requests

    def break_answers(self, broken: bool = True) -> None:
        """Answer HTTP 500 to every request (or stop doing so)."""
        self._server.broken = broken

    def rejection(self) -> bytes:
        """A reply of this TSA refusing a request (for a SHA-1 digest, which it does not take)."""
        directory = self._server.directory
        query, reply = directory / "sha1.tsq", directory / "rejected.tsr"
        (directory / "data").write_bytes(b"head bytes")
        for command in (
            [
                "openssl",
                "ts",
                "-query",
                "-sha1",
                "-data",
                str(directory / "data"),
                "-out",
                str(query),
            ],
            [
                "openssl",
                "ts",
                "-reply",
                "-config",
                str(directory / "tsa.cnf"),
                "-queryfile",
                str(query),
                "-out",
                str(reply),
            ],
        ):
            subprocess.run(command, capture_output=True, check=True)
        return reply.read_bytes()

    def answer_with(self, reply: bytes | None) -> None:
        """Answer every request with ``reply`` whatever was asked (None: answer properly)."""
        self._server.canned = reply


@contextmanager
def local_tsa(name: str = "baylink test") -> Iterator[LocalTsa]:
    with tempfile.TemporaryDirectory(prefix="baylink-tsa-") as tmp:
        directory = Path(tmp)
        make_tsa_files(directory, name)
        server = _TsaServer(directory)
        thread = threading.Thread(target=server.serve_forever, name="test-tsa", daemon=True)
        thread.start()
        try:
            host, port = server.server_address[:2]
            yield LocalTsa(
                f"http://{host!s}:{port}/tsa", directory / "ca.pem", directory / "tsa.pem", server
            )
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
