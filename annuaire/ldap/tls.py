"""A self-signed certificate for trying LDAPS / StartTLS (`--demo-tls`). Never for production."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path


def demo_certificate(directory: Path, hostnames: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """Write (or reuse) `demo-cert.pem` and `demo-key.pem` in `directory`; return their paths.

    Valid for localhost, this machine's name, 127.0.0.1 and ::1 unless `hostnames` are given.
    """
    import socket

    hostnames = hostnames or tuple(dict.fromkeys(("localhost", socket.gethostname(), socket.getfqdn())))
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "demo-cert.pem", directory / "demo-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "annuaire demo (self-signed)")])
    alt: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
