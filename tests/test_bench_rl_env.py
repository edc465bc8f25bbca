"""The environment benchmarks run in smoke mode and write the JSON that docs and README quote."""

from __future__ import annotations

import json

import pytest

from bench import qlearning, replay_memory


def test_qlearning_bench_smoke(tmp_path):
    summary = qlearning.main(["--smoke", "--out-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "qlearning.json").read_text())
    assert saved["variants"].keys() == {"td", "mc"} and (tmp_path / "qlearning.png").stat().st_size > 0
    run = saved["variants"]["td"]["runs"][0]
    assert len(run["q"]) == 10 and len(run["greedy_path"]) >= 2 and run["greedy_path"][0] == 0
    assert run["final_max_abs_error"] < 10.0  # 200 steps already moved Q toward Q*
    assert summary["q_star"][0] == [10.0, 10.0]


@pytest.mark.atari
def test_replay_memory_bench_smoke(tmp_path):
    replay_memory.main(["--smoke", "--out-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "replay_memory.json").read_text())
    assert (tmp_path / "replay_memory.png").stat().st_size > 0
    assert saved["bytes_per_slot"] <= saved["target_bytes_per_transition"]
    fill = saved["fill"]
    assert fill["sampled_pairs_matching_env"] == fill["sampled_pairs_checked"] > 0
    assert 0 < fill["held_transitions"] <= fill["capacity"]
