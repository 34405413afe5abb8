"""SCRAM on the controller listener (``ControllerEndpoint.scram_credential``): the
metadata image's credential wins; while the image has none for a user and mechanism, the
node's ``strom.add.scram`` users log in (the first election needs them before any
leader wrote them), checked through the listener's real authenticator and scramp's
client."""

from __future__ import annotations

import os
from types import SimpleNamespace

import scramp

from broker.cluster.controller_api import ControllerEndpoint
from broker.config import load_config
from broker.security.authenticator import SaslAuthenticator
from common.security.scram import credential, salted_password
from controller.metadata import MetadataImage

SHA512 = 2


def endpoint(image: MetadataImage) -> ControllerEndpoint:
    config = load_config(overrides={
        "strom.add.scram": "SCRAM-SHA-512=[name=admin,password=admin-secret]"},
        environ={})[0]
    return ControllerEndpoint(config, SimpleNamespace(image=image),  # type: ignore[arg-type]
                              None, None, "cluster")


def login(ep: ControllerEndpoint, user: str, password: str) -> str | None:
    """The principal of a SCRAM-SHA-512 exchange as ``user``/``password``, or None."""
    session = SaslAuthenticator(["SCRAM-SHA-512"], None, ep.scram_credential).session()
    assert session.handshake("SCRAM-SHA-512") == 0
    client = scramp.ScramClient(["SCRAM-SHA-512"], user, password)
    first = session.step(client.get_client_first().encode())
    if first.done:
        return first.principal
    client.set_server_first(first.response.decode())
    final = session.step(client.get_client_final().encode())
    return final.principal


def test_bootstrap_users_log_in_before_the_image_has_them() -> None:
    ep = endpoint(MetadataImage())
    assert login(ep, "admin", "admin-secret") == "User:admin"
    assert login(ep, "admin", "wrong") is None
    assert login(ep, "mallory", "admin-secret") is None
    assert ep.scram_credential("admin", 1) is None  # only the configured mechanism


def test_the_image_credential_wins_once_it_exists() -> None:
    salt = os.urandom(16)
    rotated = credential(SHA512, salt, salted_password(SHA512, "rotated", salt, 4096), 4096)
    ep = endpoint(MetadataImage(scram={("admin", SHA512): rotated}))
    assert login(ep, "admin", "rotated") == "User:admin"
    assert login(ep, "admin", "admin-secret") is None  # the bootstrap password is stale
