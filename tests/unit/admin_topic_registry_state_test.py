"""The topic registry against a plain model: random admin sequences with reopens (as after a
crash: only what was saved counts) keep the table, the logs and the model in step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from admin_support import RecordingLogs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.topics import BrokerDefaults, TopicError, TopicRegistry

NAMES = st.sampled_from(["a", "b", "c.d", "c_d", "e-1"])
CONFIG = st.sampled_from([
    ("retention.ms", "1000"), ("retention.ms", "-1"), ("cleanup.policy", "compact"),
    ("segment.bytes", "1048576"), ("max.message.bytes", "-5"), ("retention.ms", "soon"),
])


class RegistryModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="strom-registry-"))
        self.logs = RecordingLogs()
        self.registry = self._open()
        self.model: dict[str, tuple[int, dict[str, str]]] = {}

    def _open(self) -> TopicRegistry:
        registry = TopicRegistry(self.dir, BrokerDefaults(), log_manager=self.logs, node_id=1)
        registry.open(now_ms=0)
        return registry

    @staticmethod
    def _collides(name: str, existing: dict) -> bool:
        unified = name.replace(".", "_")
        return any(o != name and o.replace(".", "_") == unified for o in existing)

    @rule(name=NAMES, partitions=st.integers(-1, 3), config=st.none() | CONFIG)
    def create(self, name: str, partitions: int, config: tuple[str, str] | None) -> None:
        configs = dict([config]) if config else {}
        try:
            info = self.registry.create_topic(name, partitions, configs=configs)
        except TopicError:
            valid_config = config is None or config[1] not in ("-5", "soon")
            assert (name in self.model or self._collides(name, self.model)
                    or partitions == 0 or not valid_config)
            return
        assert name not in self.model and partitions != 0
        self.model[name] = (info.partitions, dict(info.configs))

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        try:
            self.registry.delete_topic(name)
        except TopicError:
            assert name not in self.model
            return
        del self.model[name]

    @rule(name=NAMES, extra=st.integers(0, 2))
    def grow(self, name: str, extra: int) -> None:
        if name not in self.model:
            return
        count, configs = self.model[name]
        try:
            self.registry.create_partitions(name, count + extra)
        except TopicError:
            assert extra == 0
            return
        self.model[name] = (count + extra, configs)

    @rule(name=NAMES, config=CONFIG, op=st.sampled_from([0, 1]))
    def alter(self, name: str, config: tuple[str, str], op: int) -> None:
        if name not in self.model:
            return
        count, configs = self.model[name]
        key, value = config
        try:
            self.registry.incremental_alter_configs(name, [(key, op, value)])
        except TopicError:
            assert op == 0 and value in ("-5", "soon")
            return
        new = dict(configs)
        if op == 0:
            new[key] = value
        else:
            new.pop(key, None)
        self.model[name] = (count, new)

    @rule()
    def reopen(self) -> None:
        self.registry = self._open()

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @invariant()
    def matches_model(self) -> None:
        got = {t.name: (t.partitions, dict(t.configs)) for t in self.registry.list()}
        assert got == self.model
        expected_logs = {(n, p) for n, (count, _) in self.model.items() for p in range(count)}
        assert set(self.logs.logs) == expected_logs
        for name in self.model:
            config = self.logs.topic_configs.get(name)
            if config is not None:
                assert config == self.registry.log_config(name)


TestRegistryModel = RegistryModel.TestCase
TestRegistryModel.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


class RegistryOnStorageModel(RegistryModel):
    """The same sequences on storage's real LogManager; reopen also reopens the logs."""

    def __init__(self) -> None:
        from storage.log_config import LogConfig
        from storage.log_manager import LogManager

        self._log_manager_type = LogManager
        self._log_config = LogConfig()
        RuleBasedStateMachine.__init__(self)
        self.dir = Path(tempfile.mkdtemp(prefix="strom-registry-"))
        self.logs = self._open_logs()  # type: ignore[assignment]
        self.registry = self._open()
        self.model = {}

    def _open_logs(self) -> object:
        logs = self._log_manager_type(self.dir, self._log_config)
        logs.startup(0)
        return logs

    @rule()
    def reopen(self) -> None:
        self.logs.shutdown()  # type: ignore[attr-defined]
        self.logs = self._open_logs()  # type: ignore[assignment]
        self.registry = self._open()

    @invariant()
    def matches_model(self) -> None:
        got = {t.name: (t.partitions, dict(t.configs)) for t in self.registry.list()}
        assert got == self.model
        expected = {(n, p) for n, (count, _) in self.model.items() for p in range(count)}
        assert set(self.logs.partitions()) == expected  # type: ignore[attr-defined]
        on_disk = {p.name for p in self.dir.iterdir() if p.is_dir()}
        assert on_disk == {f"{n}-{p}" for n, p in expected}
        for name, partition in expected:
            log = self.logs.get(name, partition)  # type: ignore[attr-defined]
            assert log.config == self.registry.log_config(name)

    def teardown(self) -> None:
        self.logs.shutdown()  # type: ignore[attr-defined]
        super().teardown()


TestRegistryOnStorage = RegistryOnStorageModel.TestCase
TestRegistryOnStorage.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
