"""Development PKI for the mesh: one CA and a certificate per component role.

    python -m tools.ops.certs init [--dir .run/tls] [--host NAME ...]

Creates (only what is missing, so it is idempotent and safe to run at every start):
  ca.pem, ca-key.pem                 EC P-256 CA, valid 10 years
  <role>.pem, <role>-key.pem         for edge, router, filter, worker, client, admin

Every leaf certificate names its role twice: URI SAN `spiffe://llmaas/<role>` (what servers
check, see mesh.tls.PeerRoleInterceptor) and DNS SAN `<role>.llmaas.mesh` (what clients
verify, so a channel dialled for "router" only accepts the router's certificate). It also
carries `localhost`, 127.0.0.1 and ::1 for plain hostname checks, plus any `--host` names.
Private keys are written 0600 in a 0700 directory. This is a development CA: production
uses the operator's PKI with the same naming (files in LLMAAS_TLS_DIR).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("edge", "router", "filter", "worker", "client", "admin")
SPIFFE_PREFIX = "spiffe://llmaas/"
DNS_SUFFIX = ".llmaas.mesh"
CA_DAYS = 3650
LEAF_DAYS = 825  # the usual ceiling for leaf certificates
DEFAULT_DIR = Path(".run/tls")


def role_dns(role: str) -> str:
    return f"{role}{DNS_SUFFIX}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Creates the file 0600 from the start (no window where the key is world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode is ignored when the file already existed


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llmaas dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str = "llmaas dev CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _sans(role: str, hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(f"{SPIFFE_PREFIX}{role}"),
        x509.DNSName(role_dns(role)),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_leaf(
    role: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    hosts: Iterable[str] = (),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate for one role; both serverAuth and clientAuth (the router is both)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(role))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_sans(role, hosts), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _load_or_create_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), "dev CA key must be EC"
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key, cert = make_ca()
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(_cert_pem(cert))
    return key, cert


def ensure_dev_pki(
    directory: str | os.PathLike[str] = DEFAULT_DIR,
    roles: Iterable[str] = ROLES,
    hosts: Iterable[str] = (),
) -> Path:
    """Creates the CA and any missing role certificate; returns the directory (absolute)."""
    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    ca_key, ca_cert = _load_or_create_ca(path)
    host_list = list(hosts)
    for role in roles:
        cert_path, key_path = path / f"{role}.pem", path / f"{role}-key.pem"
        if cert_path.exists() and key_path.exists():
            continue
        key, cert = make_leaf(role, ca_key, ca_cert, host_list)
        _write_private(key_path, _key_pem(key))
        cert_path.write_bytes(_cert_pem(cert))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ops.certs", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the dev CA and role certificates if absent")
    init.add_argument("--dir", default=os.environ.get("LLMAAS_TLS_DIR", str(DEFAULT_DIR)))
    init.add_argument(
        "--host", action="append", default=[], help="extra DNS name or IP (repeatable)"
    )
    args = parser.parse_args(argv)
    path = ensure_dev_pki(args.dir, hosts=args.host)
    print(f"dev PKI ready in {path} (roles: {', '.join(ROLES)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
