"""The API registry: api key → the version range a handler really implements (pure).

``ApiVersions`` is generated from this registry, so nothing is advertised that has no
handler. Each entry is an ``ApiSpec``:

- ``min_version..max_version``: versions the handler answers; every one must exist in
  kio (request and response schemas), checked at registration.
- ``advertised_min``: lower bound put in the ApiVersions response when it differs from
  ``min_version``. Only Produce uses it: Kafka 4.x advertises Produce from v0 because of a
  librdkafka bug (KAFKA-18659) but rejects v0-2 requests by closing the connection.

The registry is generic over the handler object; the broker stores async callables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kio.schema.index import api_key_map, schema_name_map
from kio.static.constants import EntityType

H = TypeVar("H")


class RegistryError(ValueError):
    """An API registered twice or with versions kio cannot encode."""


@dataclass(frozen=True, slots=True)
class ApiSpec(Generic[H]):
    """One API: key, implemented version range, handler, optional advertised minimum."""

    api_key: int
    min_version: int
    max_version: int
    handler: H
    advertised_min: int | None = None

    @property
    def name(self) -> str:
        return api_key_map.get(self.api_key, f"api_{self.api_key}")

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


class ApiRegistry(Generic[H]):
    """Mutable map api key → ``ApiSpec``; see the module doc."""

    def __init__(self, specs: Iterable[ApiSpec[H]] = ()) -> None:
        self._specs: dict[int, ApiSpec[H]] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ApiSpec[H]) -> None:
        if spec.api_key in self._specs:
            raise RegistryError(f"api key {spec.api_key} ({spec.name}) registered twice")
        if spec.min_version > spec.max_version:
            raise RegistryError(f"{spec.name}: min version above max version")
        # Existence is checked in kio's index only; the schema modules themselves are
        # imported on first use (importing all of them made startup ~1 s slower).
        versions = schema_name_map.get(api_key_map.get(spec.api_key, ""), {})
        for version in range(spec.min_version, spec.max_version + 1):
            entry = versions.get(version, {})
            if EntityType.request not in entry or EntityType.response not in entry:
                raise RegistryError(f"{spec.name} v{version} has no kio schema")
        if spec.advertised_min is not None and spec.advertised_min > spec.min_version:
            raise RegistryError(f"{spec.name}: advertised_min above min_version")
        self._specs[spec.api_key] = spec

    def get(self, api_key: int) -> ApiSpec[H] | None:
        return self._specs.get(api_key)

    def lookup(self, api_key: int, version: int) -> ApiSpec[H] | None:
        """The spec if ``version`` of ``api_key`` is implemented, else None."""
        spec = self._specs.get(api_key)
        if spec is None or not spec.supports(version):
            return None
        return spec

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def specs(self) -> list[ApiSpec[H]]:
        return [self._specs[k] for k in sorted(self._specs)]

    def advertised(self) -> list[tuple[int, int, int]]:
        """(api_key, min_version, max_version) for the ApiVersions response, by key."""
        out = []
        for spec in self.specs():
            low = spec.min_version if spec.advertised_min is None else spec.advertised_min
            out.append((spec.api_key, low, spec.max_version))
        return out

    def as_dicts(self) -> list[dict[str, Any]]:
        """``advertised()`` shaped as ApiVersions ``api_keys`` entries."""
        return [
            {"api_key": k, "min_version": lo, "max_version": hi}
            for k, lo, hi in self.advertised()
        ]
