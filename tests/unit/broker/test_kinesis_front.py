"""broker.kinesis_front's pure pieces: listener parsing and the address other brokers
relay Kinesis requests to."""

from __future__ import annotations

import pytest

from broker.config import BrokerConfig
from broker.kinesis_front import advertised_endpoint, parse_listener


def test_parse_listener_accepts_urls_and_names_the_property_it_refuses() -> None:
    assert parse_listener("http://127.0.0.1:4567") == ("127.0.0.1", 4567)
    assert parse_listener("strom-2:4568") == ("strom-2", 4568)
    with pytest.raises(ValueError, match="strom.kinesis.advertised.listener"):
        parse_listener("http://host:99999", "strom.kinesis.advertised.listener")


def test_advertised_endpoint_prefers_the_configured_one() -> None:
    bound = BrokerConfig(strom_kinesis_listener="http://0.0.0.0:4567")
    assert advertised_endpoint(bound, "0.0.0.0", 4567) == ("127.0.0.1", 4567)
    assert advertised_endpoint(bound, "10.1.2.3", 4567) == ("10.1.2.3", 4567)
    compose = BrokerConfig(strom_kinesis_listener="http://0.0.0.0:4567",
                           strom_kinesis_advertised_listener="http://strom-1:4567")
    assert advertised_endpoint(compose, "0.0.0.0", 4567) == ("strom-1", 4567)
    bad = BrokerConfig(strom_kinesis_advertised_listener="strom-1")
    with pytest.raises(ValueError, match="strom.kinesis.advertised.listener"):
        advertised_endpoint(bad, "0.0.0.0", 4567)
