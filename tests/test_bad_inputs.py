"""Table of bad inputs: each ends in one line ``rlgen: error: ...`` naming the problem and the fix, and a
non-zero exit status. (Checkpoint, log-directory and config-syntax cases are in test_cli.py, disk-full in
test_faults.py.)"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from rlgen.errors import RANGES, RlgenError, check_range
from tests.conftest import CONFIGS
from tests.test_cli import expect_error


def folders(root, a_images, b_images=None):
    """A CycleGAN dataset ``root/pair`` with the given images in trainA (and trainB, testA, testB)."""
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / "pair" / split).mkdir(parents=True, exist_ok=True)
    for split, images in (("trainA", a_images), ("trainB", b_images or a_images), ("testA", a_images),
                          ("testB", b_images or a_images)):
        for i, img in enumerate(images):
            if isinstance(img, bytes):
                (root / "pair" / split / f"{i}.png").write_bytes(img)
            else:
                img.save(root / "pair" / split / f"{i}.png")
    return root


GREY = Image.fromarray(np.zeros((16, 16), np.uint8))
RGB = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
FOLDER = ["-c", str(CONFIGS / "cyclegan" / "folder.yaml"), "--data.name=pair", "--data.num_workers=0",
          "--data.load_size=16", "--data.crop_size=16", "--trainer.max_steps=1"]

# id -> (arguments after `fit`, a function preparing tmp_path (or None), fragments of the message, exit status)
CASES = {
    "negative-learning-rate": (["-c", str(CONFIGS / "ae" / "mnist.yaml"), "--model.lr=-0.1"], None,
                               ["model.lr must be > 0, got -0.1"], 1),
    "batch-size-zero": (["-c", str(CONFIGS / "ae" / "mnist.yaml"), "--data.batch_size=0"], None, ["batch_size"], 1),
    "epsilon-above-one": (["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.eps_start=1.5"], None,
                          ["model.eps_start must be in [0, 1], got 1.5"], 1),
    "gan-k-zero": (["-c", str(CONFIGS / "gan" / "mnist.yaml"), "--model.k=0"], None, ["model.k", ">= 1"], 1),
    "unknown-class-path": (["--model=rlgen.lightning_modules.vae.NoSuchVAE"], None, ["NoSuchVAE"], 2),
    "mnist-missing-no-download": (["-c", str(CONFIGS / "vae" / "mnist.yaml"), "--data.data_dir={tmp}/empty",
                                   "--data.download=false"], None,
                                  ["MNIST not found", "train-images-idx3-ubyte", "--data.data_dir", "download"], 1),
    "trainA-missing": ([*FOLDER, "--data.data_dir={tmp}"], lambda t, m: (t / "pair").mkdir(), ["trainA"], 1),
    "folder-empty": ([*FOLDER, "--data.data_dir={tmp}"], lambda t, m: folders(t, []), ["trainA"], 1),
    "mixed-channels": ([*FOLDER, "--data.data_dir={tmp}"], lambda t, m: folders(t, [GREY, RGB]),
                       ["mixed channel counts", "--data.channels"], 1),
    "unreadable-image": ([*FOLDER, "--data.data_dir={tmp}"], lambda t, m: folders(t, [GREY, b"not a png"]),
                         ["1.png"], 1),
    "unknown-env-id": (["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.env_id=CartPol-v1"], None,
                       ["unknown environment 'CartPol-v1'", "did you mean CartPole-v1"], 1),
    "continuous-actions-for-dqn": (["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.env_id=Pendulum-v1"],
                                   None, ["discrete action space", "Box"], 1),
}

DQN = ["-c", str(CONFIGS / "dqn" / "cartpole.yaml")]
REINFORCE = ["-c", str(CONFIGS / "reinforce" / "cartpole.yaml")]
PENDULUM = ["-c", str(CONFIGS / "reinforce" / "inverted_pendulum.yaml"), "--model.env_id=Pendulum-v1"]  # no MuJoCo
VAE = ["-c", str(CONFIGS / "vae" / "mnist.yaml"), "--data.data_dir={mnist}", "--data.num_workers=0"]
GAN = ["-c", str(CONFIGS / "dcgan" / "mnist.yaml"), "--data.data_dir={mnist}", "--data.num_workers=0",
       "--model.classifier_ckpt=null"]
TEXTGAN = ["-c", str(CONFIGS / "textgan" / "mnist.yaml"), "--model.classifier_ckpt=null"]
CYCLEGAN = ["-c", str(CONFIGS / "cyclegan" / "mnist.yaml"), "--data.data_dir={mnist}", "--data.num_workers=0"]


def mnist_copy(tmp, mnist, damage):
    """``tmp/data``: a copy of the test MNIST ``mnist`` with one file damaged by ``damage(raw folder)``."""
    raw = tmp / "data" / "MNIST" / "raw"
    shutil.copytree(mnist / "MNIST" / "raw", raw)
    damage(raw)


def truncate(name, keep, then=b""):
    """Keep the first ``keep`` bytes of ``name``, followed by ``then``."""
    def damage(raw):
        path = raw / name
        path.write_bytes(path.read_bytes()[:keep] + then)
    return damage


def write(path, data: bytes):
    def prepare(tmp, mnist):
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_bytes(data)
    return prepare


CASES.update({
    # nested option typos and wrong types
    "env-options-typo": ([*DQN, '--model.env_options={"frame_stak": 4}'], None, ["frame_stak"], 2),
    "env-options-zero-frames": ([*DQN, "--model.env_options.frame_stack=0"], None, ["frame_stack"], 2),
    "env-options-bad-max-steps": ([*DQN, "--model.env_options.max_episode_steps=-5"], None, ["max_episode_steps"], 2),
    "env-kwargs-unknown-to-gym": ([*DQN, '--model.env_options.env_kwargs={"bogus": 1}'], None, ["bogus"], 1),
    "q-net-option-typo": ([*DQN, "--model.q_net.init_args.hidden_size=[16]"], None,
                          ["model.init_args.q_net.init_args.hidden_size: QNetwork has no option 'hidden_size'"], 2),
    "q-net-option-wrong-type": ([*DQN, "--model.q_net.init_args.dueling=maybe"], None,
                                ["model.init_args.q_net.init_args.dueling expects a bool, got 'maybe'"], 2),
    "q-net-sizes-wrong-type": ([*DQN, "--model.q_net.init_args.hidden_sizes=[a]"], None,
                               ["model.init_args.q_net.init_args.hidden_sizes expects an int, got 'a'"], 2),
    "generator-option-typo": ([*GAN, "--model.generator.init_args.chanels=4"], None, ["chanels"], 2),
    "pong-pixels-on-cartpole": ([*REINFORCE, "--model.env_options.pong_from_pixels=true"], None,
                                ["pong_from_pixels", "Pong"], 1),
    "unknown-subcommand": (["fitt", *DQN], None, ["fitt"], 2),
    "threads-zero": ([*DQN, "--threads=0"], None, ["threads"], 2),
    "config-file-missing": (["-c", "{tmp}/nope.yaml"], None, ["nope.yaml"], 2),
    "config-not-a-mapping": (["-c", "{tmp}/list.yaml"], write("list.yaml", b"- 1\n- 2\n"), ["list.yaml"], 2),
    "config-bad-yaml": (["-c", "{tmp}/bad.yaml"], write("bad.yaml", b"model: [1, 2\n"), ["bad.yaml"], 2),
    # numeric ranges and impossible combinations
    "dqn-gamma-above-one": ([*DQN, "--model.gamma=1.5"], None, ["gamma"], 1),
    "dqn-tau-zero": ([*DQN, "--model.tau=0"], None, ["model.tau must be in (0, 1], got 0"], 1),
    "dqn-n-step-zero": ([*DQN, "--model.n_step=0"], None, ["n_step"], 1),
    "dqn-num-envs-zero": ([*DQN, "--model.num_envs=0"], None, ["num_envs"], 1),
    "dqn-per-alpha-two": ([*DQN, "--model.per_alpha=2"], None, ["per_alpha"], 1),
    "dqn-warm-start-below-batch": ([*DQN, "--model.warm_start_steps=8", "--model.batch_size=32"], None,
                                   ["warm_start_steps", "batch_size"], 1),
    "dqn-buffer-below-batch": ([*DQN, "--model.buffer_size=16", "--model.batch_size=32",
                                "--model.warm_start_steps=64"], None, ["buffer_size", "batch_size"], 1),
    "dqn-eval-episodes-zero": ([*DQN, "--model.eval_episodes=0"], None, ["eval_episodes"], 1),
    "reinforce-negative-lr": ([*REINFORCE, "--model.lr=-1"], None, ["lr"], 1),
    "reinforce-one-action": ([*REINFORCE, "--model.action_map=[2]"], None, ["action_map"], 1),
    "reinforce-unknown-baseline": ([*REINFORCE, "--model.baseline=median"], None, ["baseline"], 2),
    "categorical-policy-on-box-actions": ([*REINFORCE, "--model.env_id=Pendulum-v1"], None,
                                          ["Box actions", "GaussianPolicy", "model.policy null"], 1),
    "gaussian-policy-on-discrete-actions": ([*PENDULUM, "--model.env_id=CartPole-v1"], None,
                                            ["Discrete actions", "CategoricalPolicy"], 1),
    "gaussian-init-std-zero": ([*PENDULUM, "--model.policy.init_args.init_std=0"], None,
                               ["GaussianPolicy.init_std must be > 0, got 0"], 1),
    "gaussian-init-std-negative": ([*PENDULUM, "--model.policy.init_args.init_std=-1"], None,
                                   ["GaussianPolicy.init_std must be > 0, got -1"], 1),
    "action-map-on-box-actions": ([*PENDULUM, "--model.action_map=[0, 1]"], None, ["action_map", "Discrete"], 1),
    "vae-iwae-negative": ([*VAE, "--model.iwae_samples=-1"], None, ["iwae_samples"], 1),
    "vae-latent-zero": ([*VAE, "--model.latent_dim=0"], None, ["latent_dim"], 1),
    "gan-ema-decay-above-one": ([*GAN, "--model.ema_decay=1.5"], None, ["ema_decay"], 1),
    "gan-top-k-zero": ([*GAN, "--model.top_k=0"], None, ["top_k"], 1),
    "gan-clusters-without-conditions": ([*GAN, "--model.clusters=10"], None, ["clusters", "cond_dim"], 1),
    "gan-more-clusters-than-images": ([*GAN, "--model.clusters=2000", "--model.generator.init_args.cond_dim=2000",
                                       "--model.discriminator.init_args.cond_dim=2000", "--trainer.max_steps=1"], None,
                                      ["clusters", "images"], 1),
    "q-net-hidden-width-zero": ([*DQN, "--model.q_net.init_args.hidden_sizes=[16, 0]"], None,
                                ["QNetwork.hidden_sizes must be >= 1, got [16, 0]"], 1),
    "policy-hidden-width-zero": ([*REINFORCE, "--model.policy.init_args.hidden_sizes=[0]"], None,
                                 ["CategoricalPolicy.hidden_sizes must be >= 1"], 1),
    "generator-latent-zero": ([*GAN, "--model.generator.init_args.latent_dim=0"], None,
                              ["DCGANGenerator.latent_dim must be >= 1, got 0"], 1),
    "discriminator-dropout-one": ([*GAN, "--model.discriminator.init_args.dropout=1"], None,
                                  ["DCGANDiscriminator.dropout must be in [0, 1), got 1"], 1),
    "cyclegan-beta1-one": ([*CYCLEGAN, "--model.beta1=1.0"], None, ["model.beta1 must be in [0, 1), got 1.0"], 1),
    "cyclegan-generator-no-blocks": ([*CYCLEGAN, "--model.generator_ab.init_args.n_blocks=0"], None,
                                     ["ResnetGenerator.n_blocks must be >= 1, got 0"], 1),
    "cyclegan-no-epochs": ([*CYCLEGAN, "--model.n_epochs=0", "--model.n_epochs_decay=0"], None, ["n_epochs"], 1),
    "crop-larger-than-load": ([*FOLDER, "--data.data_dir={tmp}", "--data.crop_size=32"],
                              lambda t, m: folders(t, [GREY, GREY]), ["crop_size", "load_size"], 1),
    "data-dir-is-a-file": ([*VAE[:2], "--data.data_dir={tmp}/file", "--data.download=false"],
                           write("file", b"x"), ["file"], 1),
    # corrupt or truncated files
    "mnist-images-truncated": ([*VAE[:2], "--data.data_dir={tmp}/data", "--data.download=false"],
                               lambda t, m: mnist_copy(t, m, truncate("train-images-idx3-ubyte", 1000)),
                               ["train-images-idx3-ubyte"], 1),
    "mnist-labels-truncated": ([*VAE[:2], "--data.data_dir={tmp}/data", "--data.download=false"],
                               lambda t, m: mnist_copy(t, m, truncate("train-labels-idx1-ubyte", 20)),
                               ["train-labels-idx1-ubyte"], 1),
    "mnist-not-idx": ([*VAE[:2], "--data.data_dir={tmp}/data", "--data.download=false"],
                      lambda t, m: mnist_copy(t, m, truncate("train-labels-idx1-ubyte", 0, b"<html>")),
                      ["train-labels-idx1-ubyte"], 1),
    "image-zero-bytes": ([*FOLDER, "--data.data_dir={tmp}"], lambda t, m: folders(t, [GREY, b""]), ["1.png"], 1),
    "checkpoint-truncated": (["test", *DQN, "--ckpt_path={tmp}/cut.ckpt"], write("cut.ckpt", b"PK\x03\x04abc"),
                             ["cut.ckpt"], 1),
    "checkpoint-is-text": (["test", *DQN, "--ckpt_path={tmp}/notes.ckpt"], write("notes.ckpt", b"hello"),
                           ["notes.ckpt"], 1),
    "checkpoint-empty": (["test", *DQN, "--ckpt_path={tmp}/empty.ckpt"], write("empty.ckpt", b""), ["empty.ckpt"], 1),
    # Trainer options whose bad values Lightning lets through (checked by rlgen before anything is built)
    "trainer-check-val-every-zero": ([*DQN, "--trainer.check_val_every_n_epoch=0"], None,
                                     ["trainer.check_val_every_n_epoch must be >= 1, got 0"], 1),
    "trainer-accumulate-zero": ([*DQN, "--trainer.accumulate_grad_batches=0"], None,
                                ["trainer.accumulate_grad_batches must be >= 1, got 0"], 1),
    "trainer-gradient-clip-negative": ([*REINFORCE, "--trainer.gradient_clip_val=-1"], None,
                                       ["trainer.gradient_clip_val must be >= 0, got -1"], 1),
    "trainer-num-nodes-zero": ([*REINFORCE, "--trainer.num_nodes=0"], None,
                               ["trainer.num_nodes must be >= 1, got 0"], 1),
    "trainer-sanity-steps-below-minus-one": ([*DQN, "--trainer.num_sanity_val_steps=-2"], None,
                                             ["trainer.num_sanity_val_steps must be >= -1, got -2"], 1),
    "trainer-log-every-negative": ([*DQN, "--trainer.log_every_n_steps=-5"], None,
                                   ["trainer.log_every_n_steps must be >= 0, got -5"], 1),
    "trainer-limit-batches-negative": (["test", *DQN, "--trainer.limit_test_batches=-1"], None,
                                       ["trainer.limit_test_batches must be >= 0, got -1"], 1),
    # sizes no machine holds: one line naming the size, not a traceback (nor a crash hours later)
    "replay-buffer-beyond-memory": ([*DQN, "--model.buffer_size=100000000000000"], None,
                                    ["replay buffer of 100,000,000,000,000 transitions", "buffer_size of at most"], 1),
    "layer-beyond-memory": (["-c", str(CONFIGS / "ae" / "mnist.yaml"), "--model.hidden_dim=100000000000"], None,
                            ["out of memory", "--model.hidden_dim=100000000000"], 1),
    # subcommands a family does not support, and their arguments
    "predict-on-dqn": (["predict", *DQN], None, ["no predict step", "rlgen test"], 1),
    "predict-on-reinforce": (["predict", *REINFORCE], None, ["no predict step"], 1),
    "textgan-predict-without-prompts": (["predict", *TEXTGAN, "--data=null"], None, ["prompts"], 1),
    "textgan-predict-with-data": (["predict", *TEXTGAN, '--model.prompts=["seven"]', "--data.data_dir={mnist}"], None,
                                  ["--data null"], 1),
})


def test_the_table_is_large():
    assert len(CASES) >= 40


# rule -> (values inside, values outside), at and around each bound
RULE_CASES = {
    "> 0": ([1e-9, 3], [0, -1]),
    ">= -1": ([-1, 0, 5], [-2, -1.5]),
    ">= 0": ([0, 2.5], [-1e-9]),
    ">= 1": ([1, 7], [0, 0.5]),
    ">= 2": ([2], [1]),
    "in [0, 1]": ([0, 0.5, 1], [-0.1, 1.1]),
    "in (0, 1]": ([1e-9, 1], [0, 1.5]),
    "in [0, 1)": ([0, 0.999], [1, -0.5]),
    "in (0, 1)": ([0.5], [0, 1]),
}


def test_check_range_bounds_and_message():
    assert set(RULE_CASES) == set(RANGES)
    for rule, (inside, outside) in RULE_CASES.items():
        for value in inside:
            check_range(rule, x=value, off=None)  # None: an option that is off
        for value in outside:
            with pytest.raises(RlgenError) as err:
                check_range(rule, "data", ok=inside[0], x=value)
            assert str(err.value) == f"data.x must be {rule}, got {value}"
    check_range(">= 1", "QNetwork", hidden_sizes=[64, 64])
    with pytest.raises(RlgenError, match=r"^QNetwork.hidden_sizes must be >= 1, got \[64, 0\]$"):
        check_range(">= 1", "QNetwork", hidden_sizes=[64, 0])


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_error(case, tmp_path, monkeypatch, capsys, mnist_dir):
    args, prepare, fragments, status = CASES[case]
    monkeypatch.chdir(tmp_path)
    if prepare is not None:
        prepare(tmp_path, mnist_dir)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{mnist}", str(mnist_dir)) for a in args]
    command = ["fit", *args] if args[0].startswith("-") else args  # cases name their subcommand, or fit
    expect_error(capsys, [*command, "--trainer.enable_progress_bar=false"], *fragments, status=status)


def test_mujoco_without_the_mujoco_package(tmp_path, monkeypatch, capsys):
    """As if gymnasium[mujoco] were not installed: ``import mujoco`` fails, and gymnasium's MuJoCo modules,
    imported again, find no mujoco (monkeypatch puts the real modules back)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "mujoco", None)
    for name in [n for n in sys.modules if n.startswith(("mujoco.", "gymnasium.envs.mujoco"))]:
        monkeypatch.delitem(sys.modules, name)
    expect_error(capsys, ["fit", "-c", str(CONFIGS / "reinforce" / "inverted_pendulum.yaml"), "--trainer.max_steps=1",
                          "--trainer.enable_progress_bar=false"], 'pip install "rlgen[mujoco]"')


def test_atari_without_ale_py(tmp_path, monkeypatch, capsys):
    """As if ale-py were not installed: ``import ale_py`` fails, and the Atari ids it registers are gone."""
    import gymnasium as gym

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ale_py", None)
    for env_id in [i for i, spec in gym.registry.items() if str(spec.entry_point).startswith("ale_py")]:
        monkeypatch.delitem(gym.registry, env_id)
    expect_error(capsys, ["fit", "-c", str(CONFIGS / "dqn" / "pong.yaml"), "--trainer.max_steps=1",
                          "--trainer.enable_progress_bar=false"], "pip install ale-py")
