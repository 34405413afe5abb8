"""Helpers for tests of the Kinesis API: the listener address a broker logged, boto3
clients against it, and raw AWS JSON 1.1 requests (for input boto3 refuses to send)."""

from __future__ import annotations

import http.client
import json
import re
import time
from typing import Any

import boto3
from botocore.config import Config

from tests.support.broker import BrokerProcess

#: every broker of these tests serves the Kinesis API on a free port
OVERRIDES = {"strom.kinesis.listener": "http://127.0.0.1:0"}
_ADDRESS = re.compile(r'"address": "(http://[0-9.]+:\d+)", "event": "kinesis_listening"')


def kinesis_url(broker: BrokerProcess, timeout: float = 10.0) -> str:
    """The ``http://host:port`` this broker's Kinesis listener logged at startup."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _ADDRESS.findall(broker.log_path.read_text(errors="replace"))
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no kinesis_listening line in the broker log\n{broker.log_tail()}")


def client(url: str, *, validate: bool = True, key: str = "test", secret: str = "test"
           ) -> Any:
    """A boto3 Kinesis client for ``url`` (no retries: a test sees the first answer)."""
    return boto3.client(
        "kinesis", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                      parameter_validation=validate, connect_timeout=5, read_timeout=30))


def raw(url: str, target: str | None, body: bytes | str,
        content_type: str = "application/x-amz-json-1.1") -> tuple[int, dict[str, Any]]:
    """POST ``body`` to ``url`` with ``X-Amz-Target: <target>``; (status, JSON answer)."""
    status, _ctype, data = post(url, target, body, content_type)
    return status, json.loads(data) if data else {}


def post(url: str, target: str | None, body: bytes | str,
         content_type: str = "application/x-amz-json-1.1") -> tuple[int, str, bytes]:
    """POST ``body``; (status, answer content type, answer bytes)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    try:
        conn.request("POST", "/", body=body.encode() if isinstance(body, str) else body,
                     headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, response.getheader("Content-Type", ""), data
