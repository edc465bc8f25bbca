"""Every YAML in configs/ runs end to end through the real CLI with a seconds-long budget."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from rlgen.cli import run
from rlgen.cli.listing import read_config
from tests.conftest import CONFIGS

OVERLAY_DIRS = {"trainer", "logger"}
ALGO_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name not in OVERLAY_DIRS)

# Extra overrides that keep a config's smoke run to seconds (fast_dev_run is always on).
# One line per config; keep your own family's lines.
SMOKE: dict[str, list[str]] = {
    "ae/mnist.yaml": [],
    "dae/mnist.yaml": [],
    "vae/mnist.yaml": [],
    "classifier/mnist.yaml": [],
    "gan/mnist.yaml": ["--model.classifier_ckpt=null"],
    "dcgan/mnist.yaml": ["--model.classifier_ckpt=null"],
    "dcgan/mnist_clusters.yaml": ["--model.classifier_ckpt=null"],
    "textgan/mnist.yaml": ["--model.classifier_ckpt=null"],
    "cyclegan/mnist.yaml": [],
    "cyclegan/folder.yaml": ["--data.name=mnist", "--data.batch_size=2", "--model.generator_ab.init_args.in_channels=1", "--model.generator_ab.init_args.out_channels=1", "--model.generator_ab.init_args.ngf=4", "--model.generator_ab.init_args.n_blocks=1", "--model.discriminator_b.init_args.in_channels=1", "--model.discriminator_b.init_args.n_layers=2", "--model.discriminator_b.init_args.ndf=4"],  # noqa: E501
    "qlearning/jump_chain.yaml": [],
    "dqn/cartpole.yaml": ["--model.warm_start_steps=64", "--model.train_frequency=4", "--model.eval_episodes=1"],
    # The Atari recipe and each game over it: the recipe's env options, episodes cut at 50 agent steps.
    **{f"dqn/{game}.yaml": ["--model.warm_start_steps=64", "--model.buffer_size=1000", "--model.eval_episodes=1",
                            "--model.env_options.max_episode_steps=50"]
       for game in ("atari", "pong", "breakout", "boxing")},
    **{f"qrdqn/{game}.yaml": ["--model.warm_start_steps=64", "--model.buffer_size=1000", "--model.eval_episodes=1",
                              "--model.env_options.max_episode_steps=50"] for game in ("atari", "breakout", "boxing")},
    "reinforce/cartpole.yaml": ["--model.eval_episodes=1"],
    "reinforce/pong.yaml": ["--model.episodes_per_batch=1", "--model.eval_episodes=1",
                            '--model.env_options={"pong_from_pixels": true, "max_episode_steps": 50}'],
    "reinforce/inverted_pendulum.yaml": ["--model.episodes_per_batch=1", "--model.eval_episodes=1"],
    "sac/pendulum.yaml": ["--model.warm_start_steps=256", "--model.eval_episodes=1"],
    "sac/hopper.yaml": ["--model.warm_start_steps=256", "--model.buffer_size=1000", "--model.eval_episodes=1"],
    "ppo/cartpole.yaml": ["--model.eval_episodes=1"],
    "ppo/hopper.yaml": ["--model.num_steps=64", "--model.num_minibatches=2", "--model.eval_episodes=1"],
    "a2c/cartpole.yaml": ["--model.eval_episodes=1"],
    "a2c/pendulum.yaml": ["--model.eval_episodes=1", "--model.test_episodes=1"],
}


def data_args(config, mnist_dir) -> list[str]:
    """The test MNIST for image DataModules (those with a data_dir), loaded in the main process."""
    cfg = yaml.safe_load(config.read_text()) or {}
    if "data_dir" in ((cfg.get("data") or {}).get("init_args") or {}):
        return [f"--data.data_dir={mnist_dir}", "--data.num_workers=0"]
    return []


def smoke_args(config, mnist_dir, subcommand: str = "fit") -> list[str]:
    rel = config.relative_to(CONFIGS).as_posix()
    return [subcommand, "-c", str(config), "--trainer.fast_dev_run=true", *data_args(config, mnist_dir),
            *SMOKE.get(rel, [])]


@pytest.mark.parametrize("config", ALGO_CONFIGS, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_config_fits(config, mnist_dir, tmp_path, monkeypatch):
    """A tiny fit of every config logs finite training losses, and its checkpoint (everything the model adds:
    RL counters, RNG states, buffers, GAN statistics) is plain data that loads with ``weights_only=True`` and
    holds the model's weights."""
    monkeypatch.chdir(tmp_path)
    cli = run(smoke_args(config, mnist_dir))
    losses = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("train/") and "loss" in k}
    assert losses, "a fit logs its training loss as train/<name>loss"
    assert all(math.isfinite(v) for v in losses.values()), losses
    cli.trainer.save_checkpoint(tmp_path / "model.ckpt")
    saved = torch.load(tmp_path / "model.ckpt", map_location="cpu", weights_only=True)
    assert saved["state_dict"].keys() == cli.model.state_dict().keys()
    assert saved["hyper_parameters"]["_class_path"].endswith(type(cli.model).__name__)


def test_every_config_has_a_header():
    for config in ALGO_CONFIGS:
        lines = config.read_text().splitlines()
        head = lines[:next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))]
        text = "\n".join(head)
        assert head and head[0].startswith("#"), f"{config}: start with a header comment"
        for word in ("rlgen", "Expected", "Wall time"):
            assert word in text, f"{config}: the header must give the command, expected result and wall time"


def printed(config: str, capsys) -> dict:
    """The config as LightningCLI parses it (``--print_config``), read back as a dict."""
    with pytest.raises(SystemExit):
        run(["fit", "-c", str(CONFIGS / config), "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("game", ["pong", "breakout", "boxing"])
def test_each_atari_game_is_the_one_recipe_with_its_game_named(game, capsys):
    """configs/dqn/<game>.yaml is configs/dqn/atari.yaml with model.env_id changed, as LightningCLI parses it
    (jsonargparse's nested `config:` key and a dotted key) and as rlgen reads it before parsing (read_config):
    the lecture's one network and one set of hyperparameters for every game."""
    recipe, thin = printed("dqn/atari.yaml", capsys), printed(f"dqn/{game}.yaml", capsys)
    env_id = f"{game.capitalize()}NoFrameskip-v4"
    assert thin["model"]["init_args"].pop("env_id") == env_id
    assert recipe["model"]["init_args"].pop("env_id") == "PongNoFrameskip-v4"
    assert thin["model"] == recipe["model"] and thin["model"]["init_args"]["env_options"]["terminal_on_life_loss"]
    assert thin["trainer"]["logger"]["init_args"].pop("name") == f"dqn_{game}"
    recipe["trainer"]["logger"]["init_args"].pop("name")
    assert thin == recipe
    read = read_config(CONFIGS / "dqn" / f"{game}.yaml")
    assert read["model"]["init_args"]["env_id"] == env_id
    assert read["trainer"] == read_config(CONFIGS / "dqn" / "atari.yaml")["trainer"]


def test_the_qrdqn_atari_recipe_is_the_dqn_recipe_with_its_model_and_network_swapped(capsys):
    """configs/qrdqn/atari.yaml changes the model's class, its network and kappa and nothing else of
    configs/dqn/atari.yaml (a nested ``model:`` block would reset the recipe's arguments); qrdqn/boxing.yaml is it
    with the game named. Its network keeps the DQN network's settings but the NoisyNet layers, which the DQN
    recipe gained after QR-DQN's runs."""
    dqn, qr, boxing = (printed(c, capsys) for c in ("dqn/atari.yaml", "qrdqn/atari.yaml", "qrdqn/boxing.yaml"))
    assert qr["model"]["class_path"].endswith("qrdqn.QRDQN") and qr["model"]["init_args"].pop("kappa") == 1.0
    assert dqn["model"]["init_args"]["q_net"]["init_args"]["noisy_std"] == 0.5
    assert qr["model"]["init_args"].pop("q_net") == {"class_path": "rlgen.nets.rl.QuantileNetwork", "init_args": {
        **dqn["model"]["init_args"].pop("q_net")["init_args"], "n_quantiles": 32, "noisy_std": 0.0}}
    assert qr["model"]["init_args"] == dqn["model"]["init_args"]
    assert qr["trainer"]["logger"]["init_args"].pop("name") == "qrdqn_atari"
    dqn["trainer"]["logger"]["init_args"].pop("name")
    assert qr["trainer"] == dqn["trainer"]
    assert boxing["model"]["init_args"]["env_id"] == "BoxingNoFrameskip-v4"


def test_the_atari_recipe_ends_every_game_within_its_agent_step_budget():
    """EnvStepBudget stops after the phase that reaches max_env_steps; that phase began below it and stored
    at most train_frequency + num_envs - 1 transitions (tests/test_replay.py), so a run ends within the
    benchmark's 1,200,000 agent steps, and leaves less than one phase of it unspent."""
    from bench.dqn_atari import BUDGET

    recipe = read_config(CONFIGS / "dqn" / "atari.yaml")
    hp = recipe["model"]["init_args"]
    budget = next(c["init_args"]["max_env_steps"] for c in recipe["trainer"]["callbacks"]
                  if c["class_path"] == "rlgen.callbacks.rl.EnvStepBudget")
    longest_phase = hp["train_frequency"] + hp["num_envs"] - 1
    assert budget - 1 + longest_phase <= BUDGET["agent_steps"] <= budget + longest_phase
