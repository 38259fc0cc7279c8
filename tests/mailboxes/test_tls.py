"""Operator identity by TLS client certificate, on a real uvicorn server with TLS.

A throw-away CA signs the server certificate and the operators' client
certificates; the server runs with `uvicorn_tls_options` (what `annuaire
serve` uses), so the subject DN reaches the API through the ASGI TLS extension.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from annuaire.cli import cli
from annuaire.config import Settings
from annuaire.http.guard import server_options
from annuaire.mailboxes.tlsident import uvicorn_tls_options
from annuaire.store import open_store
from tests.mailboxes.mailbox_fixtures import (
    Env,
    make_env,
    per,
    publication_app,
    running,
)

A = "a.mssante.fr"


def _name(**parts: str) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


def _issue(folder: Path, stem: str, subject: x509.Name, issuer: tuple[Any, x509.Name] | None, *, ca: bool = False,
           server: bool = False) -> tuple[Path, Path, Any, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key, issuer_name = issuer if issuer else (key, subject)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False)
    cert = builder.sign(signer_key, hashes.SHA256())
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, key, subject


@dataclass
class Pki:
    ca: Path
    server: tuple[Path, Path]
    alpha: tuple[Path, Path]  # registered for operator alpha (DN written in another order)
    stranger: tuple[Path, Path]  # signed by the CA, not registered
    rogue: tuple[Path, Path]  # registered DN, but signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_crt, _, ca_key, ca_name = _issue(folder, "ca", _name(C="FR", O="Annuaire test", CN="Test CA"), None, ca=True)
    _, _, other_key, other_name = _issue(folder, "other-ca", _name(CN="Other CA"), None, ca=True)
    server = _issue(folder, "server", _name(CN="127.0.0.1"), (ca_key, ca_name), server=True)
    alpha = _issue(folder, "alpha", _name(C="FR", O="Alpha", CN="mail.alpha.test"), (ca_key, ca_name))
    stranger = _issue(folder, "stranger", _name(C="FR", O="Stranger", CN="mail.stranger.test"), (ca_key, ca_name))
    rogue = _issue(folder, "rogue", _name(C="FR", O="Alpha", CN="mail.alpha.test"), (other_key, other_name))
    return Pki(ca_crt, server[:2], alpha[:2], stranger[:2], rogue[:2])


@pytest.fixture
def tls(tmp_path: Path, pki: Pki) -> Iterator[tuple[Env, str]]:
    """Identity does not depend on the storage engine: SQLite only."""
    store = open_store(f"sqlite:///{tmp_path / 'annuaire.sqlite'}")
    settings = Settings(tls_cert=str(pki.server[0]), tls_key=str(pki.server[1]), tls_client_ca=str(pki.ca))
    options = uvicorn_tls_options(settings)
    options.update(server_options(settings, base=options["http"]))  # as `annuaire serve`: with the slow-client guard
    with make_env(store) as env, running(publication_app(store, settings), **options) as url:
        yield env, url
    store.dispose()


def _client(url: str, pki: Pki, cert: tuple[Path, Path] | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(base_url=url, verify=context, timeout=30)


def _put(client: httpx.Client, token: str | None = None, domain: str = A) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return client.put(f"/api/v1/domains/{domain}/mailboxes", headers=headers,
                      content=orjson.dumps({"mailboxes": [per("camille.martin", domain=domain)]}))


def test_registered_certificate_identifies_the_operator(tls: tuple[Env, str], pki: Pki) -> None:
    env, url = tls
    with _client(url, pki, pki.alpha) as client:
        r = _put(client)
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 1
        assert client.get("/api/v1/domains").json()["operator"] == "alpha"
        # A token, when given, decides (here: beta's token on alpha's domain).
        assert _put(client, env.tokens["beta"]).status_code == 403
        assert _put(client, domain="c.mssante.fr").status_code == 403


def test_no_or_unknown_certificate(tls: tuple[Env, str], pki: Pki) -> None:
    env, url = tls
    with _client(url, pki) as client:
        r = _put(client)
        assert r.status_code == 401 and "missing credentials" in r.json()["detail"]
        assert _put(client, env.tokens["alpha"]).status_code == 200  # tokens work over TLS too
    with _client(url, pki, pki.stranger) as client:
        r = _put(client)
        assert r.status_code == 401 and "not registered" in r.json()["detail"]
    with _client(url, pki, pki.rogue) as client, pytest.raises(httpx.HTTPError):
        _put(client)  # the handshake fails: the certificate does not verify


def test_publish_command_with_certificate(tls: tuple[Env, str], pki: Pki, tmp_path: Path) -> None:
    _, url = tls
    file = tmp_path / "boxes.csv"
    file.write_text("Type de BAL|Adresse BAL|Identification nationale PP\nPER|camille.martin@a.mssante.fr|810000000001\n")
    r = CliRunner().invoke(cli, ["publish", A, str(file), "--server", url, "--ca", str(pki.ca),
                                 "--cert", str(pki.alpha[0]), str(pki.alpha[1]), "--json"])
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.stdout)["created"] == 1
