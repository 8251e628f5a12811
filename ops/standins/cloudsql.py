"""A local Cloud SQL instance for the real cloud-sql-python-connector: Admin API stand-in + TLS front.

- `SqlAdminStandIn` answers the two calls the connector makes, as the SQL Admin API v1beta4 does:
  `GET .../instances/I/connectSettings` (the instance's IPs, server CA, database version) and
  `POST .../instances/I:generateEphemeralCert` (the client's public key signed by the instance's CA,
  valid for `cert_lifetime`; with `access_token` for automatic IAM database authentication).
- `TlsFront` is the server side of the connector's protocol: TLS 1.3 on port 3307 of its own
  loopback address (127.x.y.z, so several can run at once; the connector always dials 3307), the
  client certificate verified against the CA, then the Postgres startup message read, the IAM user
  checked against the token the certificate was issued for, and the bytes proxied to the embedded
  Postgres. `drop_all()` cuts every proxied connection (maintenance, a front restart).
"""

from __future__ import annotations

import contextlib
import datetime
import random
import re
import select
import socket
import ssl
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ops.standins.google import Credentials, StandIn, _error
from shared.db import connect_kwargs

ADMIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.admin"
LOGIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.login"
PORT = 3307  # the connector's SERVER_PROXY_PORT


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Control Tower tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class InstanceCA:
    """The instance's certificate authority: signs the server certificate and every ephemeral client cert."""

    def __init__(self, instance: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert = (x509.CertificateBuilder().subject_name(_name(f"Cloud SQL CA {instance}"))
                     .issuer_name(_name(f"Cloud SQL CA {instance}")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, public_key: Any, common_name: str, lifetime: datetime.timedelta) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        return (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.cert.subject)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(seconds=30)).not_valid_after(now + lifetime)
                .sign(self.key, hashes.SHA256()))


@dataclass
class Issued:
    serial: int
    iam_user: str | None  # the Postgres user an IAM certificate may log in as
    not_after: datetime.datetime


@dataclass
class Instance:
    project: str
    region: str
    name: str
    ca: InstanceCA
    front: TlsFront | None = None
    private_ip: str | None = None
    database_version: str = "POSTGRES_16"
    issued: list[Issued] = field(default_factory=list)

    @property
    def connection_name(self) -> str:
        return f"{self.project}:{self.region}:{self.name}"


_SETTINGS = re.compile(r"^/sql/v1beta4/projects/(?P<project>[^/]+)/instances/(?P<instance>[^/:]+)/connectSettings$")
_EPHEMERAL = re.compile(r"^/sql/v1beta4/projects/(?P<project>[^/]+)/instances/(?P<instance>[^/:]+)"
                        r":generateEphemeralCert$")


class SqlAdminStandIn(StandIn):
    """The SQL Admin API calls of the connector, for the instances registered with `add`."""

    scope = ADMIN_SCOPE

    def __init__(self, credentials: Credentials) -> None:
        self.instances: dict[tuple[str, str], Instance] = {}
        self.cert_lifetime = datetime.timedelta(hours=1)
        super().__init__(credentials)

    def add(self, instance: Instance) -> None:
        self.instances[(instance.project, instance.name)] = instance

    def certificates_issued(self) -> int:
        return sum(1 for r in self.requests if r.path.endswith(":generateEphemeralCert"))

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        m = _SETTINGS.match(path) if method == "GET" else _EPHEMERAL.match(path) if method == "POST" else None
        instance = self.instances.get((m["project"], m["instance"])) if m else None
        if instance is None:
            return _error(404, "NOT_FOUND", "The Cloud SQL instance does not exist.")
        if method == "GET":
            return 200, self._connect_settings(instance)
        return self._ephemeral(instance, body or {})

    def _connect_settings(self, instance: Instance) -> dict[str, Any]:
        addresses = []
        if instance.front is not None:
            addresses.append({"type": "PRIMARY", "ipAddress": instance.front.ip})
        if instance.private_ip is not None:
            addresses.append({"type": "PRIVATE", "ipAddress": instance.private_ip})
        return {"kind": "sql#connectSettings", "serverCaCert": {"kind": "sql#sslCert", "cert": instance.ca.pem},
                "ipAddresses": addresses, "region": instance.region, "databaseVersion": instance.database_version,
                "backendType": "SECOND_GEN", "pscEnabled": False, "serverCaMode": "GOOGLE_MANAGED_INTERNAL_CA"}

    def _ephemeral(self, instance: Instance, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            public_key = serialization.load_pem_public_key(str(body["public_key"]).encode())
        except (KeyError, ValueError) as exc:
            return _error(400, "INVALID_ARGUMENT", f"public_key: {exc}")
        iam_user = None
        if body.get("access_token"):
            email = self.credentials.principal(f"Bearer {body['access_token']}", scope=LOGIN_SCOPE)
            if email is None:
                return _error(400, "INVALID_ARGUMENT", "access_token is not a valid sqlservice.login token")
            iam_user = email.removesuffix(".gserviceaccount.com")  # how Cloud SQL names a service account's user
        cert = instance.ca.sign(public_key, "Google Cloud SQL Client", self.cert_lifetime)
        instance.issued.append(Issued(cert.serial_number, iam_user, cert.not_valid_after_utc))
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        return 200, {"ephemeralCert": {"kind": "sql#sslCert", "cert": pem,
                                       "expirationTime": cert.not_valid_after_utc.isoformat()}}


def _free_loopback_ip() -> str:
    """A 127.x.y.z whose port 3307 is free (all of 127/8 is loopback on Linux)."""
    rng = random.SystemRandom()
    for _ in range(100):
        ip = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((ip, PORT))
            except OSError:
                continue
        return ip
    raise RuntimeError("no free 127.x.y.z:3307")


def _pg_error(code: str, message: str) -> bytes:
    fields = b"".join(k + v.encode() + b"\0" for k, v in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code),
                                                            (b"M", message)))
    payload = fields + b"\0"
    return b"E" + struct.pack("!I", len(payload) + 4) + payload


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed during the startup message")
        data += chunk
    return data


class TlsFront:
    """The instance's server-side proxy: mTLS on ip:3307, then Postgres bytes both ways."""

    def __init__(self, instance: Instance, backend_url: str) -> None:
        self.instance = instance
        self.backend = connect_kwargs(backend_url)
        self.ip = _free_loopback_ip()
        self.accepted = 0
        self.refused: list[str] = []
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server_cert = instance.ca.sign(server_key.public_key(), instance.connection_name, datetime.timedelta(days=1))
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_3
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._context.load_verify_locations(cadata=instance.ca.pem)
        with tempfile.NamedTemporaryFile("wb", suffix=".pem") as chain:
            chain.write(server_cert.public_bytes(serialization.Encoding.PEM))
            chain.write(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
            chain.flush()
            self._context.load_cert_chain(chain.name)
        self._listener: socket.socket | None = None
        instance.front = self
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.ip, PORT))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Stop listening and cut every connection (the instance is down)."""
        if self._listener is not None:
            _close(self._listener)  # shutdown first: a bare close leaves the accept() thread listening
            self._listener = None
        self.drop_all()

    def drop_all(self) -> int:
        """Cut every proxied connection, as a maintenance event or a front restart does; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _close(sock)
        return len(pairs)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.refused.append(f"tls: {exc}")
            _close(raw)
            return
        try:
            startup = _read_message(client)
            if startup == struct.pack("!II", 8, 80877103):  # pg8000's SSLRequest: already TLS, say no
                client.sendall(b"N")
                startup = _read_message(client)
            user = _startup_params(startup).get("user", "")
            der = client.getpeercert(binary_form=True)
            serial = x509.load_der_x509_certificate(der).serial_number if der else None
            issued = next((i for i in self.instance.issued if i.serial == serial), None)
            if issued is None:
                raise PermissionError("certificate not issued by this instance's Admin API")
            if issued.iam_user is not None and issued.iam_user != user:
                raise PermissionError(f'Cloud SQL IAM service account authentication failed for user "{user}"')
            backend = _connect_backend(self.backend)
            backend.sendall(startup)
        except (PermissionError, ConnectionError, OSError) as exc:
            self.refused.append(str(exc))
            if isinstance(exc, PermissionError):
                _send_quietly(client, _pg_error("28000", str(exc)))
            _close(client)
            return
        with self._lock:
            self.accepted += 1
            self._pairs.append((client, backend))
        _pump(client, backend)


def _read_message(sock: socket.socket) -> bytes:
    length = struct.unpack("!I", _read_exactly(sock, 4))[0]
    return struct.pack("!I", length) + _read_exactly(sock, length - 4)


def _startup_params(startup: bytes) -> dict[str, str]:
    parts = startup[8:].split(b"\0")
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]}


def _connect_backend(kwargs: dict[str, Any]) -> socket.socket:
    if "unix_sock" in kwargs:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(kwargs["unix_sock"])
        return sock
    return socket.create_connection((kwargs["host"], kwargs["port"]))


def _pump(client: ssl.SSLSocket, backend: socket.socket) -> None:
    """Bytes both ways on one thread (an SSL object must not be read and written from two threads at once)."""
    try:
        while True:
            readable = [client] if client.pending() else select.select([client, backend], [], [], 5)[0]
            for sock in readable:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                (backend if sock is client else client).sendall(chunk)
    except (OSError, ValueError):  # ValueError: a socket closed under us by drop_all
        pass
    _close(client)
    _close(backend)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
