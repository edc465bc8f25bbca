"""bench/cyclegan.py runs end to end in smoke mode and writes the JSON and PNG it promises."""

from __future__ import annotations

import json

from bench.cyclegan import main


def test_cyclegan_benchmark_smoke(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = main(["--smoke", "--data-dir", str(mnist_dir), "--out-dir", str(tmp_path), "--threads", "1"])
    saved = json.loads((tmp_path / "cyclegan.json").read_text())
    assert saved == result
    assert saved["smoke"] is True
    for key in ("label_preservation_a2b", "label_preservation_b2a"):
        assert 0.0 <= saved[key] <= 1.0
    assert 0.0 <= saved["cycle_l1_a"] <= 1.0 and 0.0 <= saved["cycle_l1_b"] <= 1.0
    kept = min(saved["label_preservation_a2b"], saved["label_preservation_b2a"])
    assert saved["passed"] == (kept >= saved["target_label_preservation"]) and saved["passed"] is False
    assert (tmp_path / "cyclegan.png").stat().st_size > 1000
