"""AWS Signature Version 4 checks (pure: the request's parts in, an error or nothing out).

With no access keys configured (``strom.kinesis.access.keys`` empty, the default) every
request is accepted, signed with any key or unsigned, as local emulators do. With keys
configured a request must carry ``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/
<region>/<service>/aws4_request, SignedHeaders=..., Signature=<hex>`` whose signature
matches the one computed with that key's secret over the canonical request
(method, path, query, the signed headers, SHA-256 of the body):

- no Authorization header: ``MissingAuthenticationTokenException``;
- a malformed one: ``IncompleteSignatureException``;
- an unknown access key: ``UnrecognizedClientException``;
- a signature that does not match, or an ``X-Amz-Date`` more than 15 minutes from the
  broker's clock (``now_ms``, passed in): ``InvalidSignatureException``.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping

from kinesis.errors import KinesisError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_MS = 15 * 60 * 1000
_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                   r"\s*Signature=([0-9a-f]{64})\s*")


def parse_access_keys(text: str) -> dict[str, str]:
    """``KEY1:SECRET1,KEY2:SECRET2`` -> {key: secret}; ValueError on a bad entry."""
    keys: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, secret = part.partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"{part!r} is not ACCESS_KEY:SECRET")
        keys[key] = secret
    return keys


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_request(method: str, path_qs: str, headers: Mapping[str, str],
                      signed: list[str], body: bytes) -> str:
    path, _, query = path_qs.partition("?")
    uri = urllib.parse.quote(urllib.parse.unquote(path or "/"), safe="/-_.~")
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}="
                               f"{urllib.parse.quote(v, safe='-_.~')}" for k, v in pairs)
    lines = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    return "\n".join([method, uri, canonical_query, lines, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])


class Authenticator:
    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = dict(keys)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def check(self, method: str, path_qs: str, headers: Mapping[str, str],
              body: bytes, now_ms: int | None = None) -> None:
        if not self.keys:
            return
        auth = headers.get("Authorization")
        if not auth:
            raise KinesisError("MissingAuthenticationTokenException",
                               "Missing Authentication Token")
        m = _AUTH.fullmatch(auth.strip())
        if m is None:
            raise KinesisError("IncompleteSignatureException",
                               f"Authorization header requires {ALGORITHM} with Credential, "
                               f"SignedHeaders and Signature.")
        credential, signed_text, signature = m.groups()
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise KinesisError("IncompleteSignatureException",
                               f"Credential {credential} is not "
                               f"<key>/<date>/<region>/<service>/aws4_request.")
        key, date, region, service, _ = parts
        secret = self.keys.get(key)
        if secret is None:
            raise KinesisError("UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        amz_date = headers.get("X-Amz-Date") or headers.get("x-amz-date") or ""
        signed = signed_text.split(";")
        lowered = {k.lower(): v for k, v in headers.items()}
        creq = canonical_request(method, path_qs, lowered, signed, body)
        scope = f"{date}/{region}/{service}/aws4_request"
        to_sign = "\n".join([ALGORITHM, amz_date, scope,
                             hashlib.sha256(creq.encode("utf-8")).hexdigest()])
        expected = hmac.new(signing_key(secret, date, region, service),
                            to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise KinesisError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult "
                "the service documentation for details.")
        if now_ms is not None:
            try:
                signed_ms = int(datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
                                .replace(tzinfo=datetime.UTC).timestamp() * 1000)
            except ValueError:
                raise KinesisError("IncompleteSignatureException",
                                   f"X-Amz-Date {amz_date!r} is not YYYYMMDDTHHMMSSZ.") from None
            if abs(now_ms - signed_ms) > MAX_SKEW_MS:
                raise KinesisError("InvalidSignatureException",
                                   f"Signature expired: {amz_date} is more than 15 minutes "
                                   f"from the server's time.")
