"""The RL benchmarks run in smoke mode (seconds) and write the JSON the README's tables come from."""

from __future__ import annotations

import json
from pathlib import Path

from bench import dqn_cartpole, reinforce_cartpole, rl_throughput
from bench._common import config_args


def test_dqn_cartpole_bench_smoke_trains_stops_and_tests_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dqn_cartpole.main(["--smoke", "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / "dqn_cartpole.json").read_text())
    (run,) = result["runs"]
    assert result["smoke"] and result["seeds_solved"] in ("0/1", "1/1")
    assert run["env_steps"] >= 200 and run["evaluations"], "the smoke run trains and evaluates"
    assert all(steps <= run["env_steps"] for steps, _, _ in run["evaluations"])
    assert run["final_eval"] == run["evaluations"][-1][2] and result["final_evals"] == [run["final_eval"]]
    # the test of last.ckpt plays its own episodes: each CartPole episode lasts 8 to 500 steps
    assert run["last_ckpt_test_episodes"] == 2 and 8 <= run["last_ckpt_test_return"] <= 500
    assert (tmp_path / "dqn_cartpole.png").stat().st_size > 0
    assert not list(tmp_path.glob("runs")), "benchmark runs log into a temporary directory"


def test_reinforce_cartpole_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reinforce_cartpole.main(["--smoke", "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / "reinforce_cartpole.json").read_text())
    (run,) = result["runs"]
    assert run["episodes"] >= 6 and len(run["episode_returns"]) == run["episodes"]
    assert all(r >= 8 for _, r in run["episode_returns"]), "a CartPole episode lasts at least 8 steps"
    assert len(run["evaluations"]) == 2, "an evaluation every 3 of the 6 training episodes"
    assert run["last_ckpt_test_episodes"] == 2 and run["stopped"] == "budget used up"
    assert (tmp_path / "reinforce_cartpole.png").stat().st_size > 0


def test_rl_throughput_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rl_throughput.main(["--smoke", "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / "rl_throughput.json").read_text())
    cartpole = result["tasks"]["cartpole"]
    assert cartpole["plain_median"] > 0 and cartpole["rlgen_median"] > 0
    # the same work on both sides: the timed env steps, and the config's replay ratio (smoke: 8 steps per phase)
    assert cartpole["rlgen_env_steps_timed"] == [cartpole["env_steps_timed"]] == [512]
    config = config_args("configs/dqn/cartpole.yaml")  # read by the bench, not copied
    assert (cartpole["batch_size"], cartpole["train_frequency"]) == (config["batch_size"], config["train_frequency"])


def test_contention_bench_smoke_times_each_setting_and_kills_its_competitor(tmp_path):
    from bench import contention

    result = contention.main(["--smoke", "--out-dir", str(tmp_path)])
    assert json.loads((tmp_path / "contention.json").read_text()) == result
    for setting in result["settings"].values():
        assert len(setting["quiet_s"]) == len(setting["busy_s"]) == 1 and min(setting["quiet_s"]) > 0
    spinning = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            spinning += [cmdline] if b"while True: pass" in cmdline.read_bytes() else []
        except OSError:  # a process that ended meanwhile
            pass
    assert not spinning, "the competing process is killed after each run"
