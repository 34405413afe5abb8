"""Producer ids are unique in a real 3-node cluster (KIP-730): every broker hands out ids
from blocks the active controller allocates in the metadata log, so producers that asked
different brokers never share an id.

- raw InitProducerId requests to each of the three brokers get ids that are all distinct;
- six idempotent confluent-kafka producers, bootstrapped two through each broker, each
  produce to one single-partition topic; DescribeProducers on the partition leader lists
  six distinct producer ids (none of them handed out to the raw requests either);
- the active controller's node is killed and restarted: its broker (whose block died with
  the process) and the others keep handing out ids never handed out before, the blocks
  now coming from the new controller, which continues the metadata log's count.
"""

from __future__ import annotations

import datetime

import pytest
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

from net.wire import WireClient
from tests.e2e.test_cluster import Cluster, create_topic, wait_until

pytestmark = pytest.mark.timeout(150)


def init_producer_id(port: int) -> int:
    request = InitProducerIdRequest(transactional_id=None,
                                    transaction_timeout=datetime.timedelta(seconds=60))
    with WireClient("127.0.0.1", port, timeout=15) as client:
        response = client.request(request)
    assert int(response.error_code) == 0, response
    return int(response.producer_id)


def active_producer_ids(port: int, topic: str) -> list[int]:
    request = DescribeProducersRequest(
        topics=(TopicRequest(name=topic, partition_indexes=(0,)),))  # type: ignore[arg-type]
    with WireClient("127.0.0.1", port, timeout=5) as client:
        response = client.request(request)
    [part] = response.topics[0].partitions
    assert int(part.error_code) == 0, part
    return [int(p.producer_id) for p in part.active_producers]


def produce_idempotent(bootstrap: str, topic: str, tag: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "message.timeout.ms": 30_000})
    errors: list[object] = []
    producer.produce(topic, value=tag.encode(), partition=0,
                     on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(40) == 0
    assert not errors, errors


def test_producers_through_different_brokers_get_distinct_ids(cluster: Cluster) -> None:
    raw = [init_producer_id(cluster.client_ports[b]) for b in (1, 2, 3) for _ in range(3)]
    assert len(set(raw)) == len(raw), raw

    topic = "pids"
    create_topic(cluster.bootstrap(1), topic, 1)
    leader = wait_until(lambda: cluster.leaders(1, topic)[0][0] > 0 and
                        cluster.leaders(1, topic)[0][0], 20, "a leader for pids-0")
    for n in range(6):
        produce_idempotent(cluster.bootstrap(1 + n % 3), topic, f"producer-{n}")
    ids = active_producer_ids(cluster.client_ports[leader], topic)
    assert len(ids) == 6 and len(set(ids)) == 6, ids
    assert not set(ids) & set(raw), (ids, raw)


def test_ids_stay_unique_across_a_controller_failover_and_restart(cluster: Cluster) -> None:
    seen = [init_producer_id(cluster.client_ports[b]) for b in (1, 2, 3) for _ in range(2)]
    leader = wait_until(lambda: cluster.quorum(1).leader_id > 0 and cluster.quorum(1),
                        10, "a quorum leader").leader_id
    cluster.nodes[leader].kill()
    survivors = [b for b in (1, 2, 3) if b != leader]
    wait_until(lambda: cluster.quorum(survivors[0]).leader_id in survivors, 20,
               "a new active controller")
    seen += [init_producer_id(cluster.client_ports[b]) for b in survivors]
    cluster.nodes[leader].start()
    cluster.wait_brokers({1, 2, 3}, via=survivors[0], timeout=40)
    fresh = wait_until(lambda: init_producer_id(cluster.client_ports[leader]), 20,
                       "an id from the restarted broker")
    seen.append(fresh)
    assert fresh > max(seen[:-1]), seen  # a block after every block handed out before
    assert len(set(seen)) == len(seen), seen
