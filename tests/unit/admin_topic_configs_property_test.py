"""Properties of topic config handling: arbitrary input never crashes, canonical forms are
stable, and incremental operations agree with a set model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from common.topics.configs import (
    TOPIC_CONFIGS,
    BrokerDefaults,
    InvalidConfig,
    apply_incremental,
    describe_topic,
    normalize_overrides,
)
from common.topics.names import InvalidTopicName, validate_topic_name

KEYS = sorted(TOPIC_CONFIGS)
raw_values = st.one_of(
    st.none(), st.text(max_size=30), st.integers().map(str),
    st.sampled_from(["-1", "0", "1", "true", "false", "compact,delete", " delete ",
                     "CreateTime", "LogAppendTime", "0.5", "1e3", "9223372036854775808"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=20)), raw_values,
                       max_size=6))
def test_any_overrides_are_refused_cleanly_or_canonical(overrides: dict) -> None:
    try:
        canonical = normalize_overrides(overrides)
    except InvalidConfig as exc:
        assert str(exc)  # every refusal says why
        return
    assert normalize_overrides(canonical) == canonical  # canonical form is a fixed point
    described = {d.name: d.value for d in describe_topic(canonical, BrokerDefaults())}
    for key, value in canonical.items():
        assert described[key] == value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]),
                          st.sets(st.sampled_from(["compact", "delete"]), min_size=1)),
                max_size=6))
def test_cleanup_policy_ops_match_a_set_model(ops: list[tuple[int, set[str]]]) -> None:
    overrides: dict[str, str] = {}
    model: set[str] | None = None  # None: not overridden (default "delete")
    for op, items in ops:
        value = ",".join(sorted(items))
        current = model if model is not None else {"delete"}
        expected = {0: set(items), 1: None, 2: current | items, 3: current - items}[op]
        try:
            overrides = apply_incremental(overrides, [("cleanup.policy", op, value)],
                                          BrokerDefaults())
        except InvalidConfig:
            assert expected == set()  # only an empty policy is refused
            continue
        model = expected
        got = overrides.get("cleanup.policy")
        assert (set(got.split(",")) if got is not None else None) == model


@given(st.text(max_size=300))
def test_topic_names_never_crash(name: str) -> None:
    try:
        validate_topic_name(name)
    except InvalidTopicName as exc:
        assert str(exc)
        return
    assert 0 < len(name) <= 249 and name not in (".", "..")
