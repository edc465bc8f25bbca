"""The RL benchmarks run in smoke mode (seconds) and write the JSON the README's tables come from."""

from __future__ import annotations

import json
import os
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import dqn_cartpole, ppo, reinforce_cartpole, reinforce_continuous, rl_throughput, sac_hopper
from bench._common import REPO, RESULTS, config_args, machine, write_results
from bench.sac import SPEED_PAIRS


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


def test_reinforce_continuous_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reinforce_continuous.main(["--smoke", "--out-dir", str(tmp_path), "--configs", "inverted_pendulum"])
    text = (tmp_path / "reinforce_inverted_pendulum.json").read_text()
    result = json.loads(text)
    (run,) = result["runs"]
    assert result["env_step_budget"] == 500_000, "the budget is read from the config"
    assert result["stopping_threshold"] == 999.9 and result["seeds_at_target"] in ("0/1", "1/1")
    assert run["gradient_steps"] == 2 and len(run["evaluations"]) == 2, "an evaluation after each of 2 steps"
    assert len(run["episode_returns"]) == run["episodes"] >= 2 and result["final_evals"] == [run["final_eval"]]
    assert run["last_ckpt_test_episodes"] == 1 and result["wall_s"] == [run["wall_s"]]
    assert 0 < run["eval_s"] < run["wall_s"], "the two evaluations' time, a part of the run's"
    assert str(tmp_path) not in text and "/work/" not in text, "no machine paths in the results"
    assert (tmp_path / "reinforce_inverted_pendulum.png").stat().st_size > 0
    # (env steps at each episode's end, its return), one env: InvertedPendulum pays 1 a step the pole is up, 0 on
    # the step it falls, so a return is its episode's length, less 1 if the pole fell
    ends = [steps for steps, _ in run["episode_returns"]]
    lengths = [end - start for start, end in pairwise([0, *ends])]
    assert all(ret in (n - 1, n) for n, (_, ret) in zip(lengths, run["episode_returns"], strict=True)), run
    assert ends[-1] <= run["env_steps"]


@pytest.mark.parametrize("task, name", [("hopper", "ppo_hopper"), ("a2c_pendulum", "a2c_pendulum")])
def test_ppo_budget_bench_smoke_writes_its_task_and_joins_seeds(task, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for seed in (0, 1):
        ppo.main(["--task", task, "--smoke", "--first-seed", str(seed), "--out-dir", str(tmp_path / str(seed)),
                  "--note", "a note"])
    parts = [str(tmp_path / str(seed) / f"{name}.json") for seed in (0, 1)]
    probes = [{"command": "an earlier setting", "final_evals": [1.0]}]
    (tmp_path / f"{name}.json").write_text(json.dumps({"final_evals": [2.0], "probes": probes}))  # the old record
    ppo.main(["--task", task, "--join", *parts, "--out-dir", str(tmp_path)])
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["probes"] == probes, "a new record keeps the probes recorded beside the old one"
    assert result["config"] == ppo.BUDGET_TASKS[task]["config"] and result["env_step_budget"] == 1_000_000
    assert [run["seed"] for run in result["runs"]] == [0, 1] and len(result["final_evals"]) == 2
    assert result["note"] == "a note" and len(result["env_steps_per_s"]) == 2
    assert result["machine"] == machine() == result["runs"][0]["machine"], "the runs' machine, where they were timed"
    assert all(0 < e < w for e, w in zip(result["eval_s"], result["wall_s"], strict=True)), result["eval_s"]
    assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_a_results_file_records_the_machine_its_timings_come_from(tmp_path):
    """Wall times only compare on one machine: each results file names its CPU and the vector instructions torch
    uses there, unless the summary names the machine it was timed on (a file rewritten elsewhere keeps it)."""
    here = machine()
    assert here["isa"] == torch.backends.cpu.get_cpu_capability() and here["cores"] == os.cpu_count()
    assert here["cpu"] and here["torch"] == torch.__version__
    written = json.loads(write_results(tmp_path, "timed", {"wall_minutes": [46.0]}).read_text())
    assert written == {"wall_minutes": [46.0], "machine": here}
    elsewhere = {"cpu": "another CPU", "isa": "AVX512", "cores": 2, "torch": "2.14.1"}
    kept = json.loads(write_results(tmp_path, "timed", {**written, "machine": elsewhere}).read_text())
    assert kept["machine"] == elsewhere
    untimed = json.loads(write_results(tmp_path, "untimed", {"wall_minutes": [46.0]}, timed=False).read_text())
    assert "machine" not in untimed, "a file of timings taken elsewhere does not name this machine"


def test_rl_throughput_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rl_throughput.main(["--smoke", "--out-dir", str(tmp_path)])
    assert not (tmp_path / "runs").exists(), "its runs leave nothing in the working directory"
    result = json.loads((tmp_path / "rl_throughput.json").read_text())
    cartpole = result["tasks"]["cartpole"]
    assert cartpole["plain_median"] > 0 and cartpole["rlgen_median"] > 0
    # the same work on both sides: the timed env steps, and the config's replay ratio (smoke: 8 steps per phase)
    assert cartpole["rlgen_env_steps_timed"] == [cartpole["env_steps_timed"]] == [512]
    config = config_args("configs/dqn/cartpole.yaml")  # read by the bench, not copied
    assert (cartpole["batch_size"], cartpole["train_frequency"]) == (config["batch_size"], config["train_frequency"])


@pytest.mark.xdist_group("processes")
def test_contention_bench_smoke_times_each_load_and_kills_its_competitor(tmp_path):
    """The plumbing only: an idle competitor (no test loads the machine; timing is the benchmark's job)."""
    from bench import contention

    result = contention.main(["--smoke", "--out-dir", str(tmp_path), "--competitor", "idle",
                              "--settings", "rlgen default"])
    assert json.loads((tmp_path / "contention.json").read_text()) == result
    assert result["settings"].keys() == {"rlgen default"} and "idle" in result["competitor"]
    setting = result["settings"]["rlgen default"]
    assert len(setting["quiet_s"]) == len(setting["busy_s"]) == 1 and min(setting["quiet_s"]) > 0
    competitors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            competitors += [cmdline] if contention.COMPETITORS["idle"][0].encode() in cmdline.read_bytes() else []
        except OSError:  # a process that ended meanwhile
            pass
    assert not competitors, "the competing process is killed after each run"


def test_sac_pendulum_bench_smoke_counts_gradient_steps_not_optimizer_steps(tmp_path, monkeypatch):
    """global_step counts two optimizer steps a SAC gradient step: the smoke run's 30 are 15 gradient steps."""
    from bench import sac

    monkeypatch.chdir(tmp_path)
    summary = sac.main(["--smoke", f"--out-dir={tmp_path}", "--threads=1", "--speed-steps=0"])
    (run,) = summary["runs"]
    # warm-up, then phases of two env steps and two gradient steps: the budget ends inside the eighth phase
    assert run["gradient_steps"] == 15 and run["env_steps"] == 256 + 16
    assert run["gradient_steps_per_s"] == round(15 / run["wall_s"], 1)


def test_sac_speed_check_alternates_which_side_runs_first(monkeypatch):
    """Pairs alternate rlgen-then-plain and plain-then-rlgen; the ratio is that of the medians."""
    from bench import sac

    calls: list[str] = []
    monkeypatch.setattr(sac, "rlgen_seconds",
                        lambda steps, overrides, config: calls.append("rlgen") or 10.0 + len(calls))
    monkeypatch.setattr(sac, "plain_seconds", lambda steps, config: calls.append("plain") or 10.0)
    result = sac.speed(100, [], pairs=4)
    assert calls == ["rlgen", "plain", "plain", "rlgen", "rlgen", "plain", "plain", "rlgen"]
    assert result["rlgen_s"] == [11.0, 14.0, 15.0, 18.0] and result["plain_s"] == [10.0] * 4
    assert result["pair_ratios"] == pytest.approx([1.1, 1.4, 1.5, 1.8])
    assert result["median_pair_ratio"] == pytest.approx(1.45)
    assert result["ratio_rlgen_over_plain"] == pytest.approx(1.45) and result["rlgen_ms_per_gradient_step"] == 145.0


def test_sac_pendulum_bench_measures_the_speed_anew_on_kept_seeds(tmp_path, monkeypatch):
    """--runs-from keeps an earlier file's scored seeds, shipped agent and conditions, and its speed check beside a
    new one; the seeds' overrides cannot change."""
    from bench import sac

    run = {"final_eval": -150.0, "env_steps": 20_000, "last_ckpt_test_return": -149.0, "wall_s": 170.0,
           "gradient_steps_per_s": 88.0, "evaluations": [[1000, 0.1, -900.0], [20_000, 2.8, -150.0]]}
    runs = [{**run, "final_eval": final} for final in (-140.0, -150.0, -160.0, -145.0, -240.0)]
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"overrides": [], "runs": runs, "conditions": "seeds alone",
                                   "exported": {"path": "shipped.ckpt"}, "speed": {"ratio_rlgen_over_plain": 1.2}}))
    monkeypatch.setattr(sac, "speed", lambda steps, overrides, pairs: {"steps": steps, "pairs": pairs})
    out = tmp_path / "out"
    summary = sac.main(["--runs-from", str(earlier), f"--out-dir={out}", "--threads=1", "--conditions=check alone"])
    assert json.loads((out / "sac_pendulum.json").read_text()) == summary
    assert summary["runs"] == runs and summary["median_final_eval"] == -150.0 and summary["met"] is True
    assert summary["speed"] == {"steps": 2000, "pairs": sac.SPEED_PAIRS, "machine": machine()}
    assert summary["machine"] is None, "the seeds' machine, not recorded in the earlier file: not this one's"
    assert summary["earlier_speed_checks"] == [{"ratio_rlgen_over_plain": 1.2}]
    assert summary["exported"] == {"path": "shipped.ckpt"} and summary["conditions"] == "seeds alone; check alone"
    kept = sac.main(["--runs-from", str(out / "sac_pendulum.json"), f"--out-dir={tmp_path / 'kept'}", "--threads=1",
                     "--speed-steps=0"])
    assert kept["speed"] == summary["speed"] and kept["earlier_speed_checks"] == summary["earlier_speed_checks"]
    with pytest.raises(SystemExit):  # the kept seeds were trained without it
        sac.main(["--runs-from", str(earlier), f"--out-dir={tmp_path / 'x'}", "--model.actor_lr=1e-3"])


def test_sac_hopper_bench_smoke_scores_a_run_directory(tmp_path, monkeypatch):
    """The Hopper benchmark scores a finished run from its TensorBoard events and its last.ckpt, and a run that
    stopped before the config's 175,000 env steps is marked incomplete (never met); scored files join; the target
    is met as issue 33 states it, on each seed's final agent."""
    monkeypatch.chdir(tmp_path)
    replaced = tmp_path / "replaced.json"  # earlier results that these runs replace, kept in brief
    replaced.write_text(json.dumps({"final_evals": [3000.0], "wall_minutes": [90.0], "note": "shared", "runs": []}))
    summary = sac_hopper.main(["--smoke", f"--out-dir={tmp_path}", "--threads=1", f"--previous={replaced}"])
    saved = json.loads((tmp_path / "sac_hopper.json").read_text())
    assert saved["previous"]["final_evals"] == [3000.0] and saved["previous"]["note"] == "shared"
    assert "runs" not in saved["previous"]
    assert saved["seeds"] == 1 and saved["final_eval_env_steps"][0] > 0 and saved["runs"][0]["evaluations"]
    assert saved["last_ckpt_test_returns"][0] == pytest.approx(saved["runs"][0]["last_ckpt_test"]["mean"])
    best = saved["runs"][0]["best_ckpt_test"]  # the best-evaluated checkpoint, tested beside last.ckpt
    assert "/best-step=" in best["ckpt"] and saved["best_ckpt_test_returns"][0] == pytest.approx(best["mean"])
    assert summary["complete"] is False and summary["met"] is False
    assert saved["training_threads"] == [None], "the run's own --threads (its config.yaml), not the scoring's"
    assert saved["runs"][0]["machine"] == machine() == saved["machine"] == saved["speed"]["machine"]
    assert (tmp_path / "sac_hopper.png").stat().st_size > 0
    speed = saved["speed"]  # rlgen's SAC on the Hopper config against a plain loop, alternating
    assert speed["gradient_steps"] == 20 and len(speed["rlgen_s"]) == len(speed["plain_s"]) == 2
    assert speed["ratio_rlgen_over_plain"] == pytest.approx(np.median(speed["rlgen_s"]) / np.median(speed["plain_s"]))
    pairs = zip(speed["rlgen_s"], speed["plain_s"], strict=True)  # each alternating pair's ratio, its noise
    assert speed["pair_ratios"] == pytest.approx([rlgen / plain for rlgen, plain in pairs])
    assert speed["median_pair_ratio"] == pytest.approx(np.median(speed["pair_ratios"]))  # beside it, not the same

    # Seeds scored in different sessions join into one file, in seed order; the same seed twice is refused.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**saved, "note": "seed 7 alone", "exported": {"path": "shipped.ckpt"},
                                 "runs": [{**saved["runs"][0], "seed": 7, "final_eval": 2600.0}]}))
    joined = sac_hopper.main(["--join", str(tmp_path / "sac_hopper.json"), str(other), "--speed-steps=0",
                              f"--out-dir={tmp_path / 'joined'}"])
    assert [run["seed"] for run in joined["runs"]] == [0, 7] == joined["trained_seeds"]  # the config's seed is 0
    assert joined["final_evals"] == [saved["final_evals"][0], 2600.0]
    assert joined["speed"] == saved["speed"], "without a new speed check, the joined files' newest stays"
    assert joined["previous"] == saved["previous"] and joined["note"] == "seed 7 alone"  # kept from the files
    assert joined["exported"] == {"path": "shipped.ckpt"}, "the shipped agent of a joined record stays"
    assert joined["machine"] == machine(), "the joined runs' common machine"
    mixed = tmp_path / "mixed.json"  # a seed timed on another machine: the file names no single one
    mixed.write_text(json.dumps({**saved, "runs": [{**saved["runs"][0], "seed": 8, "machine": {"cpu": "other"}}]}))
    both = sac_hopper.main(["--join", str(tmp_path / "sac_hopper.json"), str(mixed), "--speed-steps=0",
                            f"--out-dir={tmp_path / 'mixed'}"])
    assert both["machine"] is None and [run["machine"]["cpu"] for run in both["runs"]][1] == "other"
    with pytest.raises(SystemExit):
        sac_hopper.main(["--join", str(other), str(other), "--speed-steps=0", f"--out-dir={tmp_path / 'twice'}"])
    # A new speed check of scored seeds replaces the joined one, which is kept beside it.
    monkeypatch.setattr(sac_hopper, "speed", lambda steps, overrides, config, pairs: {"steps": steps, "pairs": pairs})
    anew = sac_hopper.main(["--join", str(tmp_path / "joined" / "sac_hopper.json"), f"--out-dir={tmp_path / 'anew'}"])
    assert anew["speed"] == {"steps": 1000, "pairs": SPEED_PAIRS, "machine": machine()}
    assert anew["earlier_speed_checks"] == [saved["speed"]] and anew["runs"] == joined["runs"]

    # The target: 3 seeds that ran the config's budget, median >= 2,500, each >= 2,000 evaluated within 300,000
    # env steps on its last step (the final agent), each <= 45 minutes.
    assert sac_hopper.BUDGET == 175_000, "the config's header: 5,000 warm-up, then 85,000 phases of two env steps"

    def met(**changed) -> bool:
        complete = {"env_steps": 175_000, "final_eval_env_steps": 175_000, "wall_minutes": 40.0}
        runs = [{**saved["runs"][0], **complete, "seed": seed, "final_eval": final}
                for seed, final in ((1, 3000.0), (2, 2100.0), (3, 2600.0))]
        runs[-1].update(changed)  # the third seed differs
        scored = tmp_path / "three.json"
        scored.write_text(json.dumps({**saved, "runs": runs}))
        return sac_hopper.main(["--join", str(scored), "--speed-steps=0", f"--out-dir={tmp_path / 'three'}"])["met"]

    assert met() is True
    assert met(wall_minutes=46.0) is False
    assert met(env_steps=170_000, final_eval_env_steps=170_000) is False, "a run stopped short of the budget"
    assert met(env_steps=310_000, final_eval_env_steps=310_000) is False, "evaluated beyond the target's 300,000"
    assert met(final_eval_env_steps=165_000) is False, "the final evaluation is not the final agent's"
    assert met(final_eval=1900.0) is False, "every seed >= 2,000"


def test_export_agent_ships_a_weights_only_file_that_plays_as_the_checkpoint_and_keeps_the_results(tmp_path,
                                                                                                   monkeypatch):
    """`bench.export_agent` writes the agent as plain data beside its results; `rlgen test` of the shipped file
    plays the same greedy episodes as the checkpoint it came from, and the results' other entries stay."""
    from bench import export_agent
    from bench._runs import score, train

    monkeypatch.chdir(tmp_path)
    config = "configs/sac/pendulum.yaml"
    tiny = ["--trainer.max_steps=20", "--trainer.val_check_interval=10", "--model.warm_start_steps=256",
            "--model.eval_episodes=1", "--model.actor.init_args.hidden_sizes=[16]",
            "--model.critic.init_args.hidden_sizes=[16]", "--model.env_options.max_episode_steps=30"]
    run_dir = train(config, str(tmp_path / "runs"), tiny)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "results"
    out.mkdir()
    (out / "sac_pendulum.json").write_text(json.dumps({"config": config, "final_evals": [-150.0]}))
    episodes = ["--model.env_options.max_episode_steps=30"]
    summary = export_agent.main(["sac_pendulum", str(ckpt), "--what", "the tiny run's last.ckpt", "--episodes=2",
                                 f"--out-dir={out}", *episodes])
    saved = json.loads((out / "sac_pendulum.json").read_text())
    assert saved["final_evals"] == [-150.0] and saved["exported"] == summary["exported"]
    assert "machine" not in saved, "exporting times nothing of the record: it names no machine it was not timed on"
    shipped = torch.load(out / "sac_pendulum.ckpt", map_location="cpu", weights_only=True)
    assert "optimizer_states" not in shipped and "loops" not in shipped and shipped["state_dict"]
    assert saved["exported"]["bytes"] == (out / "sac_pendulum.ckpt").stat().st_size < ckpt.stat().st_size
    original = score(config, str(ckpt), 2, episodes)  # the same env seeds: the same greedy episodes
    assert saved["exported"]["test"]["returns"] == original["returns"] and saved["exported"]["test"]["games"] == 2
    assert all(-16.3 * 30 <= r <= 0 for r in original["returns"]), "Pendulum's reward is within [-16.3, 0] a step"
    assert saved["exported"]["play"].startswith(f"rlgen test -c {config} --ckpt_path ")
    assert sorted(p.name for p in out.iterdir()) == ["sac_pendulum.ckpt", "sac_pendulum.json"]


@pytest.mark.parametrize("name", ["sac_pendulum", "ppo_hopper", "sac_hopper", "a2c_pendulum"])
def test_a_shipped_actor_critic_agent_plays_as_its_results_record(name, tmp_path, monkeypatch):
    """What the README promises: `rlgen test -c <config> --ckpt_path bench/results/<name>.ckpt` plays the agent
    whose returns the results file records: each of its first two episodes (the same env seeds) scores within the
    spread of the recorded episodes, 5% either side. Not the same returns: a MuJoCo episode is chaotic, and another CPU
    rounds differently (Hopper's first episode falls at 1,481 on the machine it was recorded on and runs to
    3,277 on an Intel Xeon), while a broken agent (weights or normalization not restored) scores far outside."""
    from bench._runs import score

    monkeypatch.chdir(tmp_path)  # rlgen test keeps the config it ran beside the logs of a checkpoint outside a run
    results = json.loads((RESULTS / f"{name}.json").read_text())
    exported = results["exported"]
    played = score(results["config"], str(REPO / exported["path"]), 2, [])
    recorded = exported["test"]["returns"]
    low, high = min(recorded) - 0.05 * abs(min(recorded)), max(recorded) + 0.05 * abs(max(recorded))
    assert all(low <= r <= high for r in played["returns"]), (
        f"{name}: played {played['returns']}, outside the recorded episodes' spread [{low:.1f}, {high:.1f}]")
