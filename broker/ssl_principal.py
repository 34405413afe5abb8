"""The principal of a TLS client, as Kafka derives it (pure).

Kafka's ``DefaultKafkaPrincipalBuilder`` on an SSL listener: no client certificate →
``User:ANONYMOUS``; otherwise the certificate's subject as an RFC 2253 distinguished name
(``X500Principal.getName()``: the most specific RDN first, ``CN=alice,OU=eng,O=Example``,
no spaces after commas) mapped by ``ssl.principal.mapping.rules``.

Rules (``SslPrincipalMapper``): a comma-separated list, tried in order; the first that
matches the *whole* DN decides.

- ``DEFAULT``: the DN unchanged;
- ``RULE:pattern/replacement/`` with an optional ``L`` or ``U`` after the last slash
  (lower- or upper-case the result): ``pattern`` is a Java regular expression (the subset
  Python's ``re`` shares), ``replacement`` may name groups as ``$1``..``$9``.

A DN that no rule matches cannot authenticate (Kafka's ``NoMatchingRule``): the caller
refuses the connection. ``parse_rules`` raises ``ValueError`` on a malformed rule list
(reported against the property at startup).

``subject_dn(cert)`` turns Python's ``SSLSocket.getpeercert()`` dict into that DN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ANONYMOUS = "ANONYMOUS"

#: one rule at the start of the remaining text: DEFAULT or RULE:p/r/[LU]
_RULE = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:[^/\\]|\\.)*)/((?:[^/\\]|\\.)*)/([LU])?)\s*(,|$)")
_GROUP_REF = re.compile(r"\$(\d)")

#: getpeercert()'s attribute names → RFC 2253 / X500Principal keywords
_KEYWORDS = {
    "commonName": "CN", "countryName": "C", "localityName": "L",
    "stateOrProvinceName": "ST", "organizationName": "O", "organizationalUnitName": "OU",
    "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID",
}
#: attributes Java prints as OID=#hex (DER), with the DER string tag it uses
_OIDS = {"emailAddress": ("1.2.840.113549.1.9.1", 0x16), "serialNumber": ("2.5.4.5", 0x13),
         "title": ("2.5.4.12", 0x0C), "givenName": ("2.5.4.42", 0x0C),
         "surname": ("2.5.4.4", 0x0C)}


class NoMatchingRule(ValueError):
    """No ``ssl.principal.mapping.rules`` entry matches the certificate's subject."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One mapping rule; ``pattern is None`` is ``DEFAULT``."""

    pattern: re.Pattern[str] | None = None
    replacement: str = ""
    case: str = ""  # "", "L" or "U"

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        m = self.pattern.fullmatch(dn)
        if m is None:
            return None
        out = _GROUP_REF.sub(lambda g: m.group(int(g[1])) or "", self.replacement)
        return out.lower() if self.case == "L" else out.upper() if self.case == "U" else out


def parse_rules(text: str | None) -> tuple[Rule, ...]:
    """``ssl.principal.mapping.rules`` → rules; empty means ``DEFAULT``."""
    text = (text or "").strip()
    if not text:
        return (Rule(),)
    rules: list[Rule] = []
    pos = 0
    while pos < len(text):
        m = _RULE.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid rule at {text[pos:]!r}: expected DEFAULT or "
                             f"RULE:pattern/replacement/[LU]")
        if m[1]:
            rules.append(Rule())
        else:
            try:
                pattern = re.compile(m[2])
            except re.error as exc:
                raise ValueError(f"invalid pattern {m[2]!r}: {exc}") from None
            rules.append(Rule(pattern, m[3], m[4] or ""))
        pos = m.end()
    return tuple(rules)


def map_principal(dn: str, rules: Sequence[Rule]) -> str:
    """The principal name for subject ``dn``; raises ``NoMatchingRule``."""
    for rule in rules:
        name = rule.apply(dn)
        if name is not None:
            return name
    raise NoMatchingRule(f"no ssl.principal.mapping.rules entry matches {dn!r}")


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) \
                or (ch == " " and (i == 0 or i == len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _attribute(name: str, value: str) -> str:
    keyword = _KEYWORDS.get(name)
    if keyword is not None:
        return f"{keyword}={_escape(value)}"
    oid = _OIDS.get(name)
    raw = value.encode()
    if oid is not None and len(raw) < 128:
        return f"{oid[0]}=#{oid[1]:02x}{len(raw):02x}{raw.hex()}"
    return f"{name}={_escape(value)}"


def subject_dn(subject: Iterable[Iterable[tuple[str, str]]]) -> str:
    """``getpeercert()["subject"]`` (RDNs in certificate order, each a tuple of
    (attribute, value) pairs) → RFC 2253 DN, most specific RDN first."""
    rdns = ["+".join(_attribute(k, v) for k, v in rdn) for rdn in subject]
    return ",".join(reversed(rdns))


def principal_of(cert: dict[str, object] | None, rules: Sequence[Rule]) -> str:
    """The principal name (without ``User:``) of a peer whose verified certificate is
    ``cert`` (``getpeercert()``; empty or None: no certificate → ANONYMOUS)."""
    if not cert or "subject" not in cert:
        return ANONYMOUS
    return map_principal(subject_dn(cert["subject"]), rules)  # type: ignore[arg-type]
