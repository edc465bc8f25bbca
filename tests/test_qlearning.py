"""TabularQLearning: the SGD step is the lecture's update, and it learns JumpChain's optimal Q."""

from __future__ import annotations

from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from rlgen.cli import run
from rlgen.envs import JUMP_CHAIN_ID, EnvOptions
from rlgen.errors import RlgenError
from rlgen.experience import ReplayBatch
from rlgen.experience.sources import EpisodeBatch
from rlgen.lightning_modules.qlearning import TabularQLearning
from tests.conftest import CONFIGS

CONFIG = str(CONFIGS / "qlearning" / "jump_chain.yaml")


def value_iteration(gamma: float = 1.0) -> np.ndarray:
    """Q* of JumpChain from its dynamics (the env's step, whose every transition test_envs checks)."""
    env = gym.make(JUMP_CHAIN_ID).unwrapped
    q = np.zeros((10, 2))
    for _ in range(50):
        new = np.zeros_like(q)
        for s in (0, 1, 2, 4, 5, 7, 8):  # 3, 6 (holes) and 9 (goal) are terminal
            for a in (0, 1):
                env.cell = s
                s2, r, done, _, _ = env.step(a)
                new[s, a] = r + (0.0 if done else gamma * q[s2].max())
        q = new
    return q


def test_optimal_q_is_the_lectures_plus_minus_ten_table():
    q = value_iteration()
    expected = np.array([[10, 10], [10, -10], [-10, 10], [0, 0], [10, -10],
                         [-10, 10], [0, 0], [10, 10], [10, -10], [0, 0]])  # fmt: skip
    np.testing.assert_array_equal(q, expected)


def table_module(**kwargs) -> TabularQLearning:
    module = TabularQLearning(**kwargs)
    module.setup("fit")
    return module


def test_sgd_step_on_half_squared_error_is_the_tabular_update():
    alpha, gamma = 0.3, 0.9
    module = table_module(alpha=alpha, gamma=gamma)
    torch.manual_seed(0)
    module.q.data = torch.randn(10, 2)
    before = module.q.detach().clone()
    # s=4, a=0 (R), r=2, s'=5, not terminal: delta = r + gamma * max_a' Q(5, a') - Q(4, 0)
    batch = ReplayBatch(torch.tensor([4]), torch.tensor([0]), torch.tensor([2.0]), torch.tensor([5]),
                        torch.tensor([gamma]))  # fmt: skip
    optimizer = module.configure_optimizers()
    module._loss(batch).backward()
    optimizer.step()
    delta = 2.0 + gamma * before[5].max() - before[4, 0]
    expected = before.clone()
    expected[4, 0] += alpha * delta
    torch.testing.assert_close(module.q.detach(), expected)
    assert (module.q.detach() != before).sum() == 1  # nothing else moves


def test_terminal_target_does_not_bootstrap():
    module = table_module(alpha=1.0)
    module.q.data.fill_(5.0)
    batch = ReplayBatch(torch.tensor([8]), torch.tensor([1]), torch.tensor([-10.0]), torch.tensor([8]),
                        torch.tensor([0.0]))  # fmt: skip
    optimizer = module.configure_optimizers()
    module._loss(batch).backward()
    optimizer.step()
    assert module.q[8, 1].item() == -10.0  # alpha = 1: Q becomes the target r exactly


def test_monte_carlo_step_moves_q_toward_each_return():
    alpha, gamma = 0.5, 0.5
    module = table_module(alpha=alpha, gamma=gamma, target="mc")
    module.q.data.fill_(1.0)
    # One episode 0 -R-> 1 -JR-> 3 (hole): rewards 0, -10; returns G_0 = 0.5 * -10 = -5, G_1 = -10.
    batch = EpisodeBatch(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([0.0, -10.0]), torch.tensor([2]))
    optimizer = module.configure_optimizers()
    module._loss(batch).backward()
    optimizer.step()
    assert module.q[0, 0].item() == pytest.approx(1.0 + alpha * (-5.0 - 1.0))
    assert module.q[1, 1].item() == pytest.approx(1.0 + alpha * (-10.0 - 1.0))
    assert module.q[0, 1].item() == 1.0


def greedy_path(q: np.ndarray) -> list[int]:
    env = gym.make(JUMP_CHAIN_ID)
    s, _ = env.reset(seed=0)
    path, done = [s], False
    while not done:
        s, _, done, _, _ = env.step(int(np.argmax(q[s])))
        path.append(s)
    return path


def fit_and_load(tmp_path, monkeypatch, *overrides: str) -> torch.Tensor:
    monkeypatch.chdir(tmp_path)
    run(["fit", "-c", CONFIG, "--trainer.enable_progress_bar=false", *overrides])
    ckpt = torch.load(tmp_path / "runs/qlearning_jump_chain/version_0/checkpoints/last.ckpt", weights_only=False)
    return ckpt["state_dict"]["q"].numpy()


def test_q_learning_converges_to_the_optimal_q(tmp_path, monkeypatch, capsys):
    q = fit_and_load(tmp_path, monkeypatch, "--trainer.max_steps=400", "--model.alpha=1.0")
    np.testing.assert_allclose(q, value_iteration(), atol=1e-3)
    path = greedy_path(q)
    assert path[-1] == 9 and not {3, 6} & set(path), f"greedy path {path} must avoid both holes"
    # rlgen test: prints the table and the greedy policy, logs test/episodic_return.
    ckpt = tmp_path / "runs/qlearning_jump_chain/version_0/checkpoints/last.ckpt"
    cli = run(["test", "-c", CONFIG, "--trainer.enable_progress_bar=false", "--ckpt_path", str(ckpt)])
    assert cli.trainer.callback_metrics["test/episodic_return"].item() == 10.0
    out = capsys.readouterr().out
    assert "Q table" in out and "greedy" in out and "+10.00" in out and "-10.00" in out


def test_monte_carlo_targets_learn_a_greedy_policy_that_avoids_the_holes(tmp_path, monkeypatch):
    q = fit_and_load(tmp_path, monkeypatch, "--model.target=mc", "--trainer.max_steps=300",
                     "--model.epsilon_decay_steps=1500", "--trainer.val_check_interval=100")  # fmt: skip
    path = greedy_path(q)
    assert path[-1] == 9 and not {3, 6} & set(path), f"greedy path {path} must avoid both holes"
    for s in path[:-1]:  # along the greedy path the returns were all +10
        assert q[s].max() == pytest.approx(10.0, abs=0.5)


@pytest.mark.parametrize("options", [{"env_kwargs": {"step_reward": -1.0}},
                                     EnvOptions(env_kwargs={"step_reward": -1.0})], ids=["dict", "dataclass"])
def test_env_options_load_from_a_checkpoint_as_a_dict_or_a_dataclass(options, tmp_path):
    """A checkpoint's hyperparameters hold env_options as given: a dict (a config, an older rlgen) or the
    dataclass (a model built in Python). Both load, and the envs are built from them."""
    model = table_module(env_options=options)
    assert model.env_options == EnvOptions(env_kwargs={"step_reward": -1.0})
    path = tmp_path / "q.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": pl.__version__}, path)
    loaded = TabularQLearning.load_from_checkpoint(path, weights_only=False)
    assert loaded.env_options == EnvOptions(env_kwargs={"step_reward": -1.0})
    env = loaded._make_eval_env()
    env.reset()
    assert env.step(0)[1] == -1.0  # JumpChain's step_reward
    with pytest.raises(RlgenError, match=r"unknown key\(s\) step_rewards"):
        TabularQLearning(env_options={"step_rewards": -1.0})


def test_a_module_built_in_python_saves_env_options_that_rlgen_test_reads(tmp_path, monkeypatch):
    """Trained from Python with the dataclass, the checkpoint holds env_options as plain data, so LightningCLI
    (which reads hyperparameters with weights_only=True) rebuilds the module: `rlgen test` runs on it."""
    monkeypatch.chdir(tmp_path)
    model = TabularQLearning(env_options=EnvOptions(max_episode_steps=7))
    trainer = pl.Trainer(max_steps=5, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model)
    path = tmp_path / "q.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["hyper_parameters"]["env_options"]
    assert saved == asdict(EnvOptions(max_episode_steps=7))
    assert isinstance(model.hparams.env_options, EnvOptions), "the live module keeps its dataclass"
    cli = run(["test", "-c", CONFIG, f"--ckpt_path={path}", "--model.test_episodes=1",
               "--trainer.enable_progress_bar=false"])
    assert cli.model.env_options == EnvOptions(max_episode_steps=7)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(RlgenError, match="alpha"):
        TabularQLearning(alpha=0.0)
    with pytest.raises(RlgenError, match="epsilon"):
        TabularQLearning(epsilon=1.5)
    with pytest.raises(RlgenError, match="Discrete observation space"):
        table_module(env_id="CartPole-v1")


def test_resume_continues_the_env_step_counter_and_epsilon(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["-c", CONFIG, "--trainer.enable_progress_bar=false", "--model.epsilon_decay_steps=400",
              "--trainer.val_check_interval=100"]  # fmt: skip
    first = run(["fit", *common, "--trainer.max_steps=200"])
    assert first.model.rollout.env_steps >= 200
    second = run(["fit", *common, "--trainer.max_steps=300", "--ckpt_path", "last"])
    assert second.trainer.global_step == 300
    assert second.model.rollout.env_steps >= 300, "the counter continues from the checkpoint"
    assert second.model.epsilon == pytest.approx(0.5 * (1 - second.model.rollout.env_steps / 400))
    torch.testing.assert_close(second.model.visits.sum(), torch.tensor(300.0))  # 200 restored + 100 new
