"""A throw-away certificate authority for TLS tests, made with the ``openssl`` command.

``TestCA(directory)`` creates (EC P-256 keys, fast to make):

- ``ca.pem`` / ``ca.key``: the trusted root;
- ``issue(name, subject, *, server=False, expired=False, ca=None)`` → ``Issued`` with
  ``cert`` (leaf PEM), ``key`` (unencrypted PKCS#8 PEM), ``bundle`` (key + leaf + CA, a
  Kafka ``ssl.keystore.type=PEM`` file), ``encrypted_key(password)`` and
  ``pkcs12(password)`` (a PKCS12 keystore with the chain);
- ``other = TestCA(dir2)``: a second, unknown authority for refusal tests.

Server certificates carry ``subjectAltName = DNS:localhost, IP:127.0.0.1``. An expired
certificate was valid during January 2020 (``openssl ca -startdate/-enddate``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_CA_CONF = """\
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
preserve = yes
[ anything ]
commonName = supplied
organizationalUnitName = optional
organizationName = optional
countryName = optional
[ server_ext ]
subjectAltName = DNS:localhost,IP:127.0.0.1
extendedKeyUsage = serverAuth,clientAuth
[ client_ext ]
extendedKeyUsage = clientAuth,serverAuth
"""


def _openssl(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    out = subprocess.run(["openssl", *args], cwd=cwd, input=stdin, capture_output=True,
                         timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {out.stderr.decode()}")
    return out.stdout


@dataclass(frozen=True)
class Issued:
    """One issued certificate and its files."""

    directory: Path
    name: str
    ca_pem: Path

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.name}.pem"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.name}.key"

    @property
    def bundle(self) -> Path:
        """Key, leaf and CA certificate in one PEM file (Kafka's PEM keystore)."""
        path = self.directory / f"{self.name}-bundle.pem"
        if not path.exists():
            path.write_text(self.key.read_text() + self.cert.read_text()
                            + self.ca_pem.read_text())
        return path

    def encrypted_key(self, password: str) -> Path:
        path = self.directory / f"{self.name}-encrypted.key"
        _openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(self.key),
                 "-out", str(path), "-passout", f"pass:{password}", cwd=self.directory)
        return path

    def pkcs12(self, password: str) -> Path:
        path = self.directory / f"{self.name}.p12"
        _openssl("pkcs12", "-export", "-inkey", str(self.key), "-in", str(self.cert),
                 "-certfile", str(self.ca_pem), "-name", self.name, "-out", str(path),
                 "-passout", f"pass:{password}", cwd=self.directory)
        return path


class TestCA:
    """A certificate authority in ``directory`` (created)."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name: str = "Strom Test CA") -> None:
        self.directory = Path(directory)
        (self.directory / "issued").mkdir(parents=True, exist_ok=True)
        (self.directory / "index.txt").write_text("")
        (self.directory / "serial").write_text("1000\n")
        self.conf = self.directory / "ca.cnf"
        self.conf.write_text(_CA_CONF.format(dir=self.directory))
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key",
                 cwd=self.directory)
        _openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "30",
                 "-subj", f"/CN={name}", "-out", "ca.pem", cwd=self.directory)

    @property
    def pem(self) -> Path:
        return self.directory / "ca.pem"

    def issue(self, name: str, subject: str, *, server: bool = False,
              expired: bool = False) -> Issued:
        """A certificate for ``subject`` (OpenSSL form ``/CN=alice/OU=eng``)."""
        d = self.directory
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                 f"{name}.ec.key", cwd=d)
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.ec.key", "-out",
                 f"{name}.key", cwd=d)
        _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out",
                 f"{name}.csr", cwd=d)
        dates = ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] if expired \
            else ["-days", "30"]
        _openssl("ca", "-batch", "-preserveDN", "-config", str(self.conf), "-notext",
                 "-in", f"{name}.csr",
                 "-out", f"{name}.pem", "-extensions",
                 "server_ext" if server else "client_ext", *dates, cwd=d)
        return Issued(d, name, self.pem)
