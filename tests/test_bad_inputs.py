"""Table of bad inputs: each ends in one line ``rlgen: error: ...`` naming the problem and the fix, and a
non-zero exit status. (Checkpoint, log-directory and config-syntax cases are in test_cli.py, disk-full in
test_faults.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CONFIGS, REPO
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
    "negative-learning-rate": (["-c", str(CONFIGS / "ae" / "mnist.yaml"), "--model.lr=-0.1"], None, ["lr"], 1),
    "batch-size-zero": (["-c", str(CONFIGS / "ae" / "mnist.yaml"), "--data.batch_size=0"], None, ["batch_size"], 1),
    "epsilon-above-one": (["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.eps_start=1.5"], None,
                          ["eps_start", "[0, 1]"], 1),
    "gan-k-zero": (["-c", str(CONFIGS / "gan" / "mnist.yaml"), "--model.k=0"], None, ["model.k", ">= 1"], 1),
    "unknown-class-path": (["--model=rlgen.lightning_modules.vae.NoSuchVAE"], None, ["NoSuchVAE"], 2),
    "mnist-missing-no-download": (["-c", str(CONFIGS / "vae" / "mnist.yaml"), "--data.data_dir={tmp}/empty",
                                   "--data.download=false"], None,
                                  ["MNIST not found", "train-images-idx3-ubyte", "--data.data_dir", "download"], 1),
    "trainA-missing": ([*FOLDER, "--data.data_dir={tmp}"], lambda t: (t / "pair").mkdir(), ["trainA"], 1),
    "folder-empty": ([*FOLDER, "--data.data_dir={tmp}"], lambda t: folders(t, []), ["trainA"], 1),
    "mixed-channels": ([*FOLDER, "--data.data_dir={tmp}"], lambda t: folders(t, [GREY, RGB]),
                       ["mixed channel counts", "--data.channels"], 1),
    "unreadable-image": ([*FOLDER, "--data.data_dir={tmp}"], lambda t: folders(t, [GREY, b"not a png"]),
                         ["1.png"], 1),
    "unknown-env-id": (["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.env_id=CartPol-v1"], None,
                       ["unknown environment 'CartPol-v1'", "did you mean CartPole-v1"], 1),
    "continuous-actions-for-dqn": (["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.env_id=Pendulum-v1"],
                                   None, ["discrete action space", "Box"], 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_line_error(case, tmp_path, monkeypatch, capsys):
    args, prepare, fragments, status = CASES[case]
    monkeypatch.chdir(tmp_path)
    if prepare is not None:
        prepare(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    expect_error(capsys, ["fit", *args, "--trainer.enable_progress_bar=false"], *fragments, status=status)


def test_atari_without_ale_py(tmp_path):
    code = ("import sys; sys.modules['ale_py'] = None\n"  # as if ale-py were not installed
            "from rlgen.cli import cli_main\n"
            f"cli_main(['fit', '-c', {str(CONFIGS / 'dqn' / 'pong.yaml')!r}, '--trainer.max_steps=1'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rlgen: error: ") and "pip install ale-py" in last, last
