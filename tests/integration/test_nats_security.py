"""NATS authentication (token, user and password, nkey) and TLS through settings,
against nats-servers that require them."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import nkeys
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import BIN, CIProc, Env, LoopbackServer

TOKEN = "s3cret-nats-token-value"
PASSWORD = "s3cret-nats-password"


@dataclass
class SecureNats(LoopbackServer):
    """nats-server with extra flags (credentials, TLS)."""

    flags: list[str] = field(default_factory=list)
    scheme: str = "nats"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        store, port = str(self.store), str(self.port)
        return [
            str(BIN / "nats-server"),
            "-js",
            "-sd",
            store,
            "-a",
            "127.0.0.1",
            "-p",
            port,
            *self.flags,
        ]


@pytest.fixture
def secure(tmp_path: Path):
    started: list[SecureNats] = []

    def start(flags: list[str], scheme: str = "nats") -> SecureNats:
        server = SecureNats(tmp_path / f"nats{len(started)}", flags=flags, scheme=scheme).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def fleet_env(tmp_path: Path, server: SecureNats, extra: dict[str, str]) -> Env:
    return Env(
        home=tmp_path / "home", nats_url=server.url, extra={"TEKTON_REGISTER_AI": "false", **extra}
    )


def served_and_refused(
    tmp_path: Path, server: SecureNats, good: dict[str, str], bad: dict[str, str]
) -> None:
    env = fleet_env(tmp_path, server, good)
    apollo = CIProc(env, "apollo").wait_ready()
    try:
        asked = env.tekton("ask", "apollo", "hello")
        assert asked.returncode == 0 and "simulated" in asked.stdout, asked.stderr
        refused = fleet_env(tmp_path, server, bad).tekton("ask", "apollo", "hello")
        assert refused.returncode == 2, refused.stderr
        assert "refused the connection" in refused.stderr
        for secret in (TOKEN, PASSWORD):
            assert secret not in refused.stderr + refused.stdout
    finally:
        apollo.terminate()
    assert TOKEN not in apollo.log.read_text() and PASSWORD not in apollo.log.read_text()


def test_token(tmp_path: Path, secure) -> None:
    server = secure(["--auth", TOKEN])
    served_and_refused(
        tmp_path, server, {"TEKTON_NATS_TOKEN": TOKEN}, {"TEKTON_NATS_TOKEN": "wrong"}
    )


def test_token_from_a_secret_file(tmp_path: Path, secure) -> None:
    server = secure(["--auth", TOKEN])
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    served_and_refused(tmp_path, server, {"TEKTON_NATS_TOKEN_FILE": str(secret)}, {})


def test_user_and_password(tmp_path: Path, secure) -> None:
    server = secure(["--user", "tekton", "--pass", PASSWORD])
    good = {"TEKTON_NATS_USER": "tekton", "TEKTON_NATS_PASSWORD": PASSWORD}
    served_and_refused(tmp_path, server, good, {**good, "TEKTON_NATS_PASSWORD": "nope"})


def test_nkey(tmp_path: Path, secure) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    config = tmp_path / "nkey.conf"
    config.write_text(f"authorization {{ users = [ {{ nkey: {public} }} ] }}\n")
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(seed)
    other = tmp_path / "other.nk"
    other.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    server = secure(["-c", str(config)])
    served_and_refused(
        tmp_path,
        server,
        {"TEKTON_NATS_NKEY_SEED_FILE": str(seed_file)},
        {"TEKTON_NATS_NKEY_SEED_FILE": str(other)},
    )


def _certificate(name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple | None, ca: bool):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, cert, key) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_mutual_tls(tmp_path: Path, secure) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("tekton test CA", ca_key, None, ca=True)
    ca_file, _ = _write(tmp_path, "ca", ca, ca_key)
    issued = (ca.subject, ca_key)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    server_cert, server_key_file = _write(
        tmp_path, "server", _certificate("nats", server_key, issued, ca=False), server_key
    )
    client_cert, client_key_file = _write(
        tmp_path, "client", _certificate("apollo", client_key, issued, ca=False), client_key
    )
    server = secure(
        [
            "--tls",
            "--tlscert",
            server_cert,
            "--tlskey",
            server_key_file,
            "--tlsverify",
            "--tlscacert",
            ca_file,
        ],
        scheme="tls",
    )
    good = {
        "TEKTON_NATS_TLS_CA": ca_file,
        "TEKTON_NATS_TLS_CERT": client_cert,
        "TEKTON_NATS_TLS_KEY": client_key_file,
    }
    # without a client certificate the server refuses the handshake
    served_and_refused(tmp_path, server, good, {"TEKTON_NATS_TLS_CA": ca_file})
    missing = fleet_env(tmp_path, server, {"TEKTON_NATS_TLS_CA": str(tmp_path / "nope.pem")})
    broken = missing.tekton("ask", "apollo", "hi")
    assert broken.returncode == 2 and "NATS TLS files" in broken.stderr
