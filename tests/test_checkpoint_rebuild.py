"""A checkpoint rebuilds the model it was trained with: ``rlgen test|predict -c <family config> --ckpt_path X``
works for a model trained with a non-default network, given only the family's config (rlgen/checkpoints.py), and
every agent shipped in bench/results plays under the config its README line names."""

from __future__ import annotations

import pytest
import torch

from rlgen.checkpoints import read_checkpoint
from rlgen.cli import run
from tests.conftest import CONFIGS, REPO
from tests.test_configs import SMOKE, data_args

SHIPPED = sorted((REPO / "bench" / "results").glob("*.ckpt"))
NOT_AGENTS = {"mnist_classifier"}  # the Inception-score classifier (tests/test_classifier.py)

# config: (non-default network arguments for fit, the evaluating subcommand, its budget)
CASES = {
    "dqn/cartpole.yaml": (["--model.q_net.init_args.hidden_sizes=[16]"], "test", ["--model.test_episodes=1"]),
    "reinforce/cartpole.yaml": (["--model.policy.init_args.hidden_sizes=[8]"], "test", ["--model.test_episodes=1"]),
    "reinforce/inverted_pendulum.yaml": (["--model.policy.init_args.hidden_sizes=[8]",
                                          "--model.policy.init_args.init_std=0.3",
                                          "--model.policy.init_args.activation=relu"],
                                         "test", ["--model.test_episodes=1"]),
    "dcgan/mnist.yaml": (["--model.generator.init_args.channels=4", "--model.discriminator.init_args.channels=4"],
                         "predict", []),
    "textgan/mnist.yaml": (["--model.generator.init_args.channels=4", "--model.discriminator.init_args.channels=4"],
                           "predict", ["--data=null", '--model.prompts=["seven"]']),  # draws from prompts
    "cyclegan/mnist.yaml": (["--model.generator_ab.init_args.ngf=4", "--model.generator_ab.init_args.n_blocks=1",
                             "--model.discriminator_b.init_args.ndf=4"], "predict", []),
    "ae/mnist.yaml": (["--model.latent_dim=3", "--model.hidden_dim=16"], "predict", []),
    "vae/mnist.yaml": (["--model.latent_dim=3"], "predict", []),
    "classifier/mnist.yaml": (["--model.width=8"], "test", []),
}


@pytest.mark.parametrize("rel", sorted(CASES))
def test_the_family_config_rebuilds_a_checkpoint_with_other_network_sizes(rel, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = CONFIGS / rel
    net_args, subcommand, budget = CASES[rel]
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    run(["fit", "-c", str(config), *data_args(config, mnist_dir), *SMOKE.get(rel, []), *net_args, *quiet,
         "--trainer.max_steps=2", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=0",
         "--trainer.num_sanity_val_steps=0"])
    (ckpt,) = tmp_path.rglob("last.ckpt")
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    cli = run([subcommand, "-c", str(config), *data_args(config, mnist_dir), *budget, *quiet,
               f"--trainer.limit_{subcommand}_batches=1", "--ckpt_path", str(ckpt)])
    built = cli.model.state_dict()
    assert {k: v.shape for k, v in built.items() if k in saved} == {k: v.shape for k, v in saved.items() if k in built}
    assert set(saved) <= set(built), set(saved) - set(built)


@pytest.mark.parametrize("ckpt", [p for p in SHIPPED if p.stem not in NOT_AGENTS], ids=lambda p: p.stem)
def test_every_shipped_agent_plays_with_its_weights_under_its_config(ckpt, tmp_path, monkeypatch):
    """``rlgen test -c configs/<algo>/<game>.yaml --ckpt_path bench/results/<algo>_<game>.ckpt``, the command the
    README and the config headers give for a shipped agent, rebuilds its network from the config, loads the shipped
    weights (weights-only files, the target network rebuilt) and plays: one short episode here."""
    monkeypatch.chdir(tmp_path)
    algo, game = ckpt.stem.split("_", 1)
    config = CONFIGS / algo / f"{game}.yaml"
    assert config.exists(), f"{ckpt.name}: a shipped agent is named <algo>_<game>.ckpt after its config"
    cli = run(["test", "-c", str(config), "--ckpt_path", str(ckpt), "--model.test_episodes=1",
               "--model.env_options.max_episode_steps=20", "--trainer.enable_progress_bar=false",
               "--trainer.enable_model_summary=false"])
    built = cli.model.state_dict()
    for key, value in read_checkpoint(ckpt)["state_dict"].items():
        torch.testing.assert_close(built[key], value, msg=f"{ckpt.name}: {key}")
    assert len(cli.model.eval_returns) == 1


def test_a_network_option_newer_than_the_checkpoint_takes_its_default_not_the_configs(tmp_path, capsys, monkeypatch):
    """A checkpoint written before ``QNetwork`` had ``noisy_std`` (every shipped DQN agent) still plays under a config
    that turns the option on: its network is rebuilt as the checkpoint knew it. Named on the command line, the
    option wins, and the weights do not fit."""
    from tests.test_cli import expect_error

    monkeypatch.chdir(tmp_path)
    config = CONFIGS / "dqn/cartpole.yaml"
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    run(["fit", "-c", str(config), *SMOKE["dqn/cartpole.yaml"], *quiet, "--trainer.max_steps=2",
         "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0"])
    (ckpt,) = tmp_path.rglob("last.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["hyper_parameters"]["q_net"]["init_args"]["noisy_std"]  # as written before the option existed
    torch.save(state, ckpt)
    noisy = tmp_path / "noisy.yaml"  # a config that turns the option on
    noisy.write_text("model:\n  init_args:\n    q_net:\n      class_path: rlgen.nets.rl.QNetwork\n"
                     "      init_args:\n        noisy_std: 0.5\n")
    cli = run(["test", "-c", str(config), "-c", str(noisy), "--ckpt_path", str(ckpt), "--model.test_episodes=1",
               *quiet])
    built = cli.model.state_dict()
    assert set(built) == set(state["state_dict"]), "no noisy layers: the network the checkpoint was written from"
    for key, value in state["state_dict"].items():
        torch.testing.assert_close(built[key], value, msg=key)
    expect_error(capsys, ["test", "-c", str(config), "--ckpt_path", str(ckpt), "--model.test_episodes=1", *quiet,
                          "--model.q_net.init_args.noisy_std=0.5"],
                 "does not fit this model", "missing keys", "weight_sigma")
