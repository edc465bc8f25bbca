"""The RL benchmarks run in smoke mode (seconds) and write the JSON the README's tables come from."""

from __future__ import annotations

import json

from bench import dqn_cartpole, reinforce_cartpole, rl_throughput


def test_dqn_cartpole_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dqn_cartpole.main(["--smoke", "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / "dqn_cartpole.json").read_text())
    (run,) = result["runs"]
    assert result["smoke"] and result["seeds_solved"] in ("0/1", "1/1")
    assert run["env_steps"] >= 1_000 and run["evaluations"], "the smoke run trains and evaluates"
    assert all(steps <= run["env_steps"] for steps, _, _ in run["evaluations"])
    assert (tmp_path / "dqn_cartpole.png").stat().st_size > 0


def test_reinforce_cartpole_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reinforce_cartpole.main(["--smoke", "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / "reinforce_cartpole.json").read_text())
    (run,) = result["runs"]
    assert run["episodes"] >= 6 and len(run["episode_returns"]) == run["episodes"]
    assert all(r >= 8 for _, r in run["episode_returns"]), "a CartPole episode lasts at least 8 steps"
    assert (tmp_path / "reinforce_cartpole.png").stat().st_size > 0


def test_episodes_to_solve_counts_the_first_full_window():
    assert reinforce_cartpole.episodes_to_solve([100, 500, 500, 450, 500], window=2, threshold=475) == 3
    assert reinforce_cartpole.episodes_to_solve([100, 500], window=2, threshold=475) is None


def test_rl_throughput_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rl_throughput.main(["--smoke", "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / "rl_throughput.json").read_text())
    cartpole = result["tasks"]["cartpole"]
    assert cartpole["plain_median"] > 0 and cartpole["rlgen_median"] > 0
    assert cartpole["ratio_rlgen_over_plain"] == cartpole["rlgen_median"] / cartpole["plain_median"]
    assert cartpole["ratio_rlgen_over_plain_fused"] == cartpole["rlgen_median"] / cartpole["plain_fused_median"]
