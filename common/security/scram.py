"""SCRAM credentials (RFC 5802 / RFC 7677) as Kafka keeps them. Pure.

A credential is what a server needs to verify a SCRAM client and nothing more: the salt,
the iteration count, ``StoredKey = H(HMAC(SaltedPassword, "Client Key"))`` and
``ServerKey = HMAC(SaltedPassword, "Server Key")``; never the password.

Mechanisms carry Kafka's ``ScramMechanism`` type ids (UNKNOWN 0, SCRAM-SHA-256 1,
SCRAM-SHA-512 2), as AlterUserScramCredentials, DescribeUserScramCredentials and
``UserScramCredentialRecord`` do. Kafka's iteration bounds: 4096..16384.

Bootstrap users (``parse_add_scram``) use the syntax of ``kafka-storage.sh format
--add-scram``, several entries separated by ``;``::

    SCRAM-SHA-256=[name=alice,password=alice-secret]
    SCRAM-SHA-512=[name=bob,password=bob-secret,iterations=8192,salt=<base64>]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

MECHANISMS: dict[str, int] = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_NAMES: dict[int, str] = {v: k for k, v in MECHANISMS.items()}
HASHES: dict[int, str] = {1: "sha256", 2: "sha512"}
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384
DEFAULT_ITERATIONS = 4096


@dataclass(frozen=True, slots=True)
class ScramCredential:
    mechanism: int
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def salted_password(mechanism: int, password: str, salt: bytes, iterations: int) -> bytes:
    """``Hi(password, salt, iterations)`` (PBKDF2 with the mechanism's HMAC)."""
    return hashlib.pbkdf2_hmac(HASHES[mechanism], password.encode(), salt, iterations)


def credential(mechanism: int, salt: bytes, salted: bytes, iterations: int
               ) -> ScramCredential:
    """The credential for a salted password (what AlterUserScramCredentials carries)."""
    name = HASHES[mechanism]
    client_key = hmac.new(salted, b"Client Key", name).digest()
    stored_key = hashlib.new(name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", name).digest()
    return ScramCredential(mechanism, bytes(salt), stored_key, server_key, iterations)


def iterations_problem(mechanism: int, iterations: int) -> str | None:
    """Why ``iterations`` is unacceptable for ``mechanism`` (UNACCEPTABLE_CREDENTIAL)."""
    name = MECHANISM_NAMES.get(mechanism, "?")
    if iterations < MIN_ITERATIONS:
        return f"Too few iterations (minimum for {name} is {MIN_ITERATIONS})"
    if iterations > MAX_ITERATIONS:
        return f"Too many iterations (maximum for {name} is {MAX_ITERATIONS})"
    return None


@dataclass(frozen=True, slots=True)
class BootstrapUser:
    """One ``--add-scram`` entry; ``salt`` None: a random one is chosen."""

    name: str
    mechanism: int
    password: str
    iterations: int = DEFAULT_ITERATIONS
    salt: bytes | None = None


def parse_add_scram(value: str) -> list[BootstrapUser]:
    """Parse bootstrap users (module doc); raises ValueError naming the problem."""
    users = []
    for entry in (e.strip() for e in value.split(";")):
        if not entry:
            continue
        mech_name, sep, rest = entry.partition("=")
        mech = MECHANISMS.get(mech_name.strip().upper())
        if mech is None or not sep:
            raise ValueError(f"expected SCRAM-SHA-256=[...] or SCRAM-SHA-512=[...], got "
                             f"{mech_name.strip()!r}")
        rest = rest.strip()
        if not (rest.startswith("[") and rest.endswith("]")):
            raise ValueError(f"{mech_name}: the options must be in [...]")
        options: dict[str, str] = {}
        for part in rest[1:-1].split(","):
            key, eq, val = part.partition("=")
            if not eq:
                raise ValueError(f"{mech_name}: expected key=value, got {part!r}")
            options[key.strip().lower()] = val.strip().strip('"')
        unknown = set(options) - {"name", "password", "iterations", "salt"}
        if unknown:
            raise ValueError(f"{mech_name}: unknown option(s) {sorted(unknown)}")
        if not options.get("name") or "password" not in options:
            raise ValueError(f"{mech_name}: name and password are required")
        try:
            iterations = int(options.get("iterations", DEFAULT_ITERATIONS))
            salt = base64.b64decode(options["salt"], validate=True) if "salt" in options \
                else None
        except ValueError as exc:
            raise ValueError(f"{mech_name}: bad iterations or salt: {exc}") from None
        problem = iterations_problem(mech, iterations)
        if problem:
            raise ValueError(f"{mech_name}: {problem}")
        users.append(BootstrapUser(options["name"], mech, options["password"], iterations,
                                   salt))
    return users
