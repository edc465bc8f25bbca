"""The classifier, DCGAN and text-GAN benchmarks run in smoke mode and write the JSON and PNG they promise."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench import classifier, dcgan, textgan
from rlgen.lightning_modules.classifier import Classifier
from tests.test_classifier import save_classifier


def test_classifier_bench_smoke(mnist_dir, tmp_path):
    classifier.main(["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}"])
    result = json.loads((tmp_path / "classifier.json").read_text())
    assert result["smoke"] is True
    assert 0 <= result["test_acc"] <= 1 and len(result["per_class_acc"]) == 10
    assert result["passed"] == (result["test_acc"] >= result["target_test_acc"]) and result["passed"] is False
    assert 0 < result["checkpoint_bytes"] < 2_000_000, "the classifier checkpoint must stay small enough to commit"
    assert (tmp_path / "classifier.png").stat().st_size > 0


def test_dcgan_and_textgan_bench_smoke(mnist_dir, tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = tmp_path / "clf.ckpt"
    save_classifier(Classifier(width=8), ckpt)
    common = ["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}", f"--classifier-ckpt={ckpt}"]

    dcgan.main(common)
    result = json.loads((tmp_path / "dcgan.json").read_text())
    assert result["smoke"] is True and result["num_samples"] == 200
    assert 1.0 <= result["is"] <= 10.0 and 1.0 <= result["real_is"] <= 10.0
    assert result["fid"] >= 0 and result["real_fid"] >= 0
    assert result["passed"] == (result["is"] >= result["target_is"]) and result["passed"] is False
    target = result["target_is"]
    assert 0 <= result["entropy"] <= math.log(10) and 0 <= result["unsure"] <= 1
    assert (tmp_path / "dcgan.png").stat().st_size > 0

    dcgan.main([*common, "--model", "dcgan_clusters"])  # the same target for the DCGAN on k-means clusters
    result = json.loads((tmp_path / "dcgan_clusters.json").read_text())
    assert result["config"] == "configs/dcgan/mnist_clusters.yaml" and result["target_is"] == target
    assert 1.0 <= result["is"] <= 10.0 and (tmp_path / "dcgan_clusters.png").stat().st_size > 0

    dcgan.main([*common, "--model", "gan"])  # the paper's MLP GAN: scored the same way, no target
    result = json.loads((tmp_path / "gan.json").read_text())
    assert result["config"] == "configs/gan/mnist.yaml" and result["target_is"] is None and result["passed"] is None
    assert 1.0 <= result["is"] <= 10.0 and (tmp_path / "gan.png").stat().st_size > 0

    textgan.main(common)
    result = json.loads((tmp_path / "textgan.json").read_text())
    assert result["smoke"] is True
    assert 0 <= result["prompt_acc"] <= 1 and len(result["per_digit_acc"]) == 10
    assert result["passed"] == (result["prompt_acc"] >= result["target_prompt_acc"])
    assert set(result["per_template_acc"]) >= {"{word}", "the digit {digit}"}
    assert result["passed"] is False, "a smoke run cannot draw the prompted digits"
    diversity = result["within_prompt_diversity"]
    assert diversity["ratio"] >= 0 and len(diversity["real_pixel_std"]) == 10
    assert (tmp_path / "textgan.png").stat().st_size > 0

    # --fit-arg reaches the training run: a bad value fails there, with the CLI's exit status
    with pytest.raises(SystemExit) as exit_info:
        textgan.main([*common, "--fit-arg=--model.mode_seeking=-1"])
    assert exit_info.value.code != 0 and "model.mode_seeking must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--ckpt skips training"):
        textgan.main([*common, f"--ckpt={ckpt}", "--fit-arg=--model.mode_seeking=0"])


def test_class_confidence_on_hand_made_probabilities():
    class Stub(torch.nn.Module):  # reads class probabilities from the first 3 pixels
        def forward(self, x):
            return x.flatten(1)[:, :3].log()

    rows = [[1.0, 0.0, 0.0], [0.95, 0.05, 0.0], [0.4, 0.6, 0.0], [0.85, 0.15, 0.0]]
    fake = torch.tensor(rows).view(4, 1, 1, 3)
    out = dcgan.class_confidence(Stub(), fake, fake[:1])

    def h(p):
        return -sum(q * math.log(q) for q in p if q > 0)

    assert out["entropy"] == pytest.approx(sum(map(h, rows)) / 4, rel=1e-5)
    assert out["unsure"] == pytest.approx(2 / 4)  # top class 0.6 and 0.85
    assert out["real_entropy"] == pytest.approx(0.0, abs=1e-6) and out["real_unsure"] == 0.0
