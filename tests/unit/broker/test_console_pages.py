"""``broker.console.pages``: values are escaped (a group id is any string), unknown
offsets show as an em dash, sizes are readable, and a group without commits says so."""

from __future__ import annotations

from broker.console import pages
from broker.console.snapshot import Cluster, Group, GroupOffset, PartitionRow, TopicRow


def test_group_ids_are_escaped_and_unknown_values_are_dashes() -> None:
    html = pages.groups("c", 1, [
        Group('<b>"g"</b>', "Stable", "range", ("m-1",),
              (GroupOffset("t", 0, 4, None), GroupOffset("t", 1, 2, 9))),
        Group("idle", "Empty", "", (), ())])
    assert '<b>"g"</b>' not in html
    assert "<h2>&lt;b&gt;&quot;g&quot;&lt;/b&gt;</h2>" in html
    assert 'id="group-&lt;b&gt;&quot;g&quot;&lt;/b&gt;"' in html
    assert '<td data-col="lag" class="n">—</td>' in html  # no replica here: no lag
    assert '<td data-col="lag" class="n">7</td>' in html
    assert "<h2>idle</h2>" in html and "No committed offsets." in html


def test_topic_page_marks_a_short_isr_and_formats_sizes() -> None:
    t = TopicRow("t", (PartitionRow(0, 1, (1, 2), (1,), 0, 3, 5, 3 * 1024 * 1024),
                       PartitionRow(1, 2, (1, 2), (1, 2), None, None, None, None)))
    html = pages.topic(Cluster("c", 1, 1, 1, (1,), (), (t,)), t)
    assert '<td data-col="isr" class="bad">1</td>' in html
    assert '<td data-col="size" class="n">3.0 MiB</td>' in html
    assert '<td data-col="high_watermark" class="n">—</td>' in html
    assert t.under_replicated == 1 and t.replication_factor == 2 and t.size_bytes == 3 << 20


def test_decoders_fall_back_json_to_text_to_hex() -> None:
    from broker.console.browse import decode

    assert decode(b'{"a":[1]}', "json") == ('{\n  "a": [\n    1\n  ]\n}', False)
    assert decode(b"not json", "json") == ("not json", True)
    assert decode(b"\xff", "json") == ("ff", True)
    assert decode(b"\xc3\xa9", "utf8") == ("é", False)
    assert decode(b"ab", "hex") == ("61 62", False)
    assert decode(None, "hex") == ("null", False)
