"""bench.recompression runs end to end on a tiny volume and reports every figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import recompression


def test_tiny_run_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = recompression.main(["--mib", "1", "--rounds", "1", "--batch-kib", "64",
                              "--dir", str(tmp_path)])
    for key in ("producer_mib_s", "gzip_to_lz4_mib_s", "gzip_to_zstd_mib_s",
                "codec_floor_mib_s", "lz4_vs_producer", "lz4_vs_codec_floor"):
        assert out[key] > 0, key
    assert 0 < out["stored_ratio_gzip"] < 1 and 0 < out["stored_ratio_lz4"] < 1
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    assert "gzip->lz4" in capsys.readouterr().out
