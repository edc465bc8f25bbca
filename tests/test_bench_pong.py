"""The Atari benchmarks in smoke mode: they train through rlgen, read the curves back from TensorBoard,
score the final agent on whole games and export it as a small checkpoint that `rlgen test` plays."""

from __future__ import annotations

import json

import pytest
import torch

from bench import dqn_atari, reinforce_pong, tables
from bench._common import REPO, shown_path

pytestmark = pytest.mark.atari


def _args(tmp_path, name: str | None) -> list[str]:
    """Smoke arguments writing under tmp_path; the agent goes to ``--export tmp_path/<name>.ckpt``, or with
    ``name=None`` to the default place."""
    export = [] if name is None else ["--export", str(tmp_path / f"{name}.ckpt")]
    return ["--smoke", "--games", "2", "--out-dir", str(tmp_path), "--save-dir", str(tmp_path / "runs"), *export]


def test_dqn_pong_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the config trains without sticky actions (PongNoFrameskip-v4); trained with them, the agent also plays without
    dqn_atari.main([*_args(tmp_path, "dqn_pong"), "--model.env_id=ALE/Pong-v5"])  # --game pong, the default
    result = json.loads((tmp_path / "dqn_pong.json").read_text())
    final = result["final"]
    assert result["more_games"] is None, "no --more-games, no extra games"
    assert final["games"] == len(final["returns"]) == 2 and final["mean"] == sum(final["returns"]) / 2
    assert result["env_id"] == "ALE/Pong-v5 (sticky actions 0.25)" and result["final_with_sticky_actions"] is None
    assert result["config"] == "configs/dqn/pong.yaml" and result["target"].startswith(">= 18.0 within")
    assert result["final_without_sticky_actions"]["games"] == 2
    train = result["curves"]["train_episodic_return"]
    steps = [s for s, _, _ in train]
    assert train and steps == sorted(steps) and steps[-1] <= result["agent_steps"]
    assert result["gradient_steps"] == 40  # the smoke budget (10 phases of 4), read from the scored checkpoint
    by_gradient_step = result["curves"]["val_episodic_return_by_gradient_step"]
    # an evaluation every 5 phases of 40 agent steps and 4 gradient steps, after the 200 warm-up steps
    assert [s for s, _, _ in by_gradient_step] == [20, 40]
    paths = [result["run_dir"], final["ckpt"], result["frames"]["png"], result["exported"]["path"]]
    assert not any(p.startswith("/") for p in paths), f"results hold no machine paths: {paths}"
    assert not result["met"], "a smoke run cannot meet the target"
    state = torch.load(tmp_path / "dqn_pong.ckpt", weights_only=False)
    assert "optimizer_states" not in state and not any(k.startswith("target_net.") for k in state["state_dict"])
    assert "replay_buffer" not in state["rl_state"], "the exported agent leaves the saved replay buffer out"
    assert result["exported"]["bytes"] == (tmp_path / "dqn_pong.ckpt").stat().st_size < 15_000_000  # ~13 MB
    assert (tmp_path / "dqn_pong.png").stat().st_size > 0
    frames = result["frames"]
    assert frames["game_steps"] == 99  # the smoke game's time limit: 100 steps, one of them FIRE at the reset
    assert frames["video_frames"] >= 90 and (tmp_path / "dqn_pong_frames.png").stat().st_size > 0


def test_dqn_atari_bench_smoke_scores_the_game_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = REPO / "bench" / "results" / "dqn_breakout.ckpt"
    before = shipped.read_bytes()
    result = dqn_atari.main(["--game", "breakout", *_args(tmp_path, None), "--games", "1", "--more-games", "3"])
    # without --export the agent goes beside the results (--out-dir): the shipped agent stays as it is
    assert result["exported"]["path"] == shown_path(tmp_path / "dqn_breakout.ckpt")
    assert (tmp_path / "dqn_breakout.ckpt").stat().st_size == result["exported"]["bytes"]
    assert shipped.read_bytes() == before
    saved = json.loads((tmp_path / "dqn_breakout.json").read_text())
    assert saved["final"] == result["final"]
    more = saved["more_games"]  # the spread: 3 games, the first of them the scored one (the same env seed)
    assert more["games"] == len(more["returns"]) == 3 and more["returns"][0] == result["final"]["returns"][0]
    mean = sum(more["returns"]) / 3
    spread = (sum((r - mean) ** 2 for r in more["returns"]) / 2 / 3) ** 0.5  # the sample std / sqrt(3)
    assert more["mean"] == pytest.approx(mean) and more["standard_error"] == pytest.approx(spread, abs=0.005)
    assert "with sticky actions (ALE/Breakout-v5)" in tables._dqn_atari(saved), "the table names the game's ids"
    assert result["game"] == "breakout" and result["config"] == "configs/dqn/breakout.yaml"
    assert result["env_id"] == "BreakoutNoFrameskip-v4 (sticky actions 0)"  # the config's environment
    assert (result["sticky_env_id"], result["plain_env_id"]) == ("ALE/Breakout-v5", "BreakoutNoFrameskip-v4")
    assert result["final_with_sticky_actions"]["games"] == 1 and result["final_without_sticky_actions"] is None
    assert result["target"].startswith(">= 65.0 within 1,200,000 agent steps") and not result["met"]
    assert "CleanRL DQN" in result["published"]
    assert result["exported"]["path"].endswith("dqn_breakout.ckpt") and (tmp_path / "dqn_breakout.ckpt").exists()
    assert result["frames"]["png"].endswith("dqn_breakout_frames.png") and (tmp_path / "dqn_breakout.png").exists()
    assert not list(tmp_path.glob("runs/config*.yaml")), "the scoring's rlgen test writes its config elsewhere"


def test_dqn_atari_bench_refuses_a_negative_number_of_more_games_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit):
        dqn_atari.main([*_args(tmp_path, None), "--more-games", "-1"])
    assert "--more-games -1: give a number of games >= 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "nothing was trained"


def test_dqn_atari_bench_scores_qrdqn_rebuilt_with_the_extra_arguments(tmp_path, monkeypatch):
    """--algo qrdqn trains configs/qrdqn/<game>.yaml into qrdqn_<game>.*, and the extra arguments reach the scoring
    too: the agent is played back with 4 quantiles, as trained (the config's 32 could not load it)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="configs/qrdqn/pong.yaml does not exist"):
        dqn_atari.main(["--algo", "qrdqn", "--game", "pong", *_args(tmp_path, None)])
    result = dqn_atari.main(["--algo", "qrdqn", "--game", "boxing", *_args(tmp_path, None), "--games", "1",
                             "--model.q_net.n_quantiles=4"])
    assert result["config"] == "configs/qrdqn/boxing.yaml" and result["overrides"][-1] == "--model.q_net.n_quantiles=4"
    assert result["final"]["model"] == "QRDQN" and result["final_with_sticky_actions"]["model"] == "QRDQN"
    assert json.loads((tmp_path / "qrdqn_boxing.json").read_text())["final"] == result["final"]
    state = torch.load(tmp_path / "qrdqn_boxing.ckpt", weights_only=False)
    assert state["state_dict"]["q_net.head.advantage.0.weight"].shape[0] == 18 * 4, "18 actions, 4 quantiles each"


def test_reinforce_pong_bench_joins_a_resumed_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = reinforce_pong.main(_args(tmp_path, "reinforce_pong"))
    runs = tmp_path / "runs" / "reinforce_pong"
    last = runs / "version_0" / "checkpoints" / "last.ckpt"
    # resume for 2 more gradient steps: a new version directory whose env steps continue
    second = reinforce_pong.main([*_args(tmp_path, "reinforce_pong"), f"--ckpt_path={last}", "--trainer.max_steps=4"])
    joined = reinforce_pong.main([*_args(tmp_path, "reinforce_pong"),
                                  f"--run-dir={runs / 'version_0'},{runs / 'version_1'}"])
    curve = joined["curves"]["return_last100"]
    assert len(curve) == len(first["curves"]["return_last100"]) + len(second["curves"]["return_last100"])
    assert [s for s, _, _ in curve] == sorted(s for s, _, _ in curve), "env steps continue across the resume"
    assert [m for _, m, _ in curve] == sorted(m for _, m, _ in curve), "wall minutes add up"
    assert joined["agent_steps"] == second["agent_steps"] > first["agent_steps"]
    assert joined["final_greedy"]["games"] == 2
    text = (tmp_path / "reinforce_pong.json").read_text()
    assert json.loads(text)["run_dirs"] == joined["run_dirs"]
    assert str(tmp_path) not in text, "no machine paths in the results (the exported agent's included)"


def test_dqn_step_cost_bench_smoke(tmp_path):
    from bench import dqn_step_cost

    summary = dqn_step_cost.main(["--smoke", "--out-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "dqn_step_cost.json").read_text())
    assert [(r["cnn"], r["layout"], r["noisy_std"]) for r in saved["results"]] == [
        (cnn, layout, noisy) for cnn in ("nature", "nips") for layout in ("contiguous", "channels_last")
        for noisy in (0.0, 0.5)]
    assert all(r["threads"] == 1 and r["ms_median"] > 0 for r in summary["results"])
    assert [r["ratio_to_nature_channels_last"] for r in saved["results"]][2] == 1.0  # Nature, channels-last, no noise
    nature, noisy, _, _, nips, _, _, _ = saved["results"]  # the Nature CNN (512 units) does more than the NIPS one
    # the noisy layers' second matrix product, sigma^w (f(eps_in) x), forward and backward
    assert noisy["gflop_per_step"] > nature["gflop_per_step"]
    assert nature["gflop_per_step"] > nips["gflop_per_step"] > 0 and saved["matmul_limit_gflops"]["1"] > 0
    assert nature["gflops"] == pytest.approx(nature["gflop_per_step"] / (nature["ms_median"] / 1000))
    assert nature["fraction_of_matmul_limit"] == pytest.approx(nature["gflops"] / saved["matmul_limit_gflops"]["1"])


def test_step_gflop_counts_forward_and_backward_by_hand():
    from bench.dqn_step_cost import step_gflop

    layer, x = torch.nn.Linear(300, 200, bias=False), torch.randn(50, 300)  # the input needs no gradient
    # forward 2 B I O; backward only the weight's gradient, 2 B I O more
    assert step_gflop(lambda: layer(x).sum().backward()) == pytest.approx(4 * 50 * 300 * 200 / 1e9)


def test_step_rates_by_hand():
    from bench._runs import step_rates

    points = [(0, 0.0, -21.0), (600, 1.0, -20.0), (600, 1.0, -19.0), (1200, 3.0, -18.0)]  # a repeated log time
    # 1,200 steps in 180 s; between logs: 600 steps in 60 s and 600 steps in 120 s
    assert step_rates(points) == {"overall": round(1200 / 180, 1), "median_between_logs": 7.5}
    assert step_rates(points[:1]) == {"overall": None, "median_between_logs": None}


def test_joined_curves_drop_what_the_interrupted_part_logged_past_its_checkpoint(tmp_path):
    import time

    from torch.utils.tensorboard import SummaryWriter

    from bench._runs import joined_curves, run_dirs

    def part(name: str, points: list[tuple[int, int, float]]) -> None:  # (logging step, env steps, return)
        with SummaryWriter(tmp_path / name) as writer:
            for step, env_steps, value in points:
                t = time.time() + step  # a wall second per logging step
                writer.add_scalar("rollout/env_steps", env_steps, step, walltime=t)
                writer.add_scalar("rollout/episodic_return", value, step, walltime=t)

    # the first part reached 300 env steps, but its last checkpoint was at 200: the resumption starts from there
    part("version_0", [(0, 100, 1.0), (60, 200, 2.0), (120, 300, 3.0)])
    part("version_1", [(0, 220, 2.5), (30, 320, 3.5)])
    dirs = run_dirs(f"{tmp_path / 'version_0'},{tmp_path / 'version_1'}")
    curve = joined_curves(dirs, ("rollout/episodic_return",))["rollout/episodic_return"]
    # 300 is dropped (done again from 200); the second part's minutes continue from the first's kept 1 min
    assert curve == [(100, 0.0, 1.0), (200, 1.0, 2.0), (220, 1.0, 2.5), (320, 1.5, 3.5)]
    assert joined_curves(dirs[:1], ("rollout/episodic_return",))["rollout/episodic_return"][-1] == (300, 2.0, 3.0)
    with pytest.raises(Exception, match="no run directory .*version_9"):
        run_dirs(f"{tmp_path / 'version_0'},{tmp_path / 'version_9'}")


def test_pong_env_speed_bench_smoke_times_every_setting(tmp_path):
    from bench import pong_env_speed

    result = pong_env_speed.main(["--smoke", "--out-dir", str(tmp_path)])
    assert json.loads((tmp_path / "pong_env_speed.json").read_text()) == result
    medians = result["median_agent_steps_per_s"]
    assert set(medians) == {f"{s}, 1 thread(s)" for s in ("ale-py make_vec", "rlgen DQN stack", "rlgen Pong pixels",
                                                            "rlgen Pong pixels + policy")}
    assert all(rate > 0 for rate in medians.values()) and all(len(r) == 1 for r in result["runs"].values())
