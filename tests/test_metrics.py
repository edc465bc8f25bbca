"""FID / Inception Score with the MNIST classifier as feature extractor: sanity values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rlgen.lightning_modules.classifier import Classifier
from rlgen.metrics import ClassifierFeatures, make_fid, score_images
from tests.conftest import fake_digits


def bar_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fake digits (label k = a bright bar at column 2 + 2k) as (N, 1, 28, 28) floats in [0, 1]."""
    images, labels = fake_digits(n, seed)
    return torch.from_numpy(images).float().div(255).unsqueeze(1), torch.from_numpy(labels).long()


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    """A small classifier trained in a few seconds to recognize the fake digits."""
    torch.manual_seed(0)
    model = Classifier(width=8, dropout=0.0)
    x, y = bar_images(2000, 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        idx = torch.randint(0, len(x), (64,))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    xt, yt = bar_images(500, 11)
    assert (model(xt).argmax(1) == yt).float().mean() > 0.95, "fixture classifier failed to learn"
    return model


@pytest.mark.xdist_group("classifier")
def test_feature_module_shapes_and_eval_mode(classifier):
    feats = ClassifierFeatures(classifier, "features")
    logits = ClassifierFeatures(classifier, "logits")
    feats.train()  # a parent module switching to train mode must not enable dropout / batch statistics
    assert not classifier.training
    x = torch.rand(3, 1, 28, 28)
    assert feats(x).shape == (3, feats.num_features) == (3, 32)
    assert logits(x).shape == (3, logits.num_features) == (3, 10)


@pytest.mark.xdist_group("classifier")
def test_fid_real_vs_real_near_zero_and_far_from_noise(classifier):
    real, _ = bar_images(1000, 12)
    same = make_fid(classifier)
    same.update(real, real=True)
    same.update(real, real=False)
    assert same.compute().abs() < 1e-2  # identical samples: FID 0 up to numerics

    halves = score_images(classifier, fake=[real[:500]], real=[real[500:]], splits=5)["fid"]
    noise = score_images(classifier, fake=[torch.rand(500, 1, 28, 28)], real=[real[500:]], splits=5)["fid"]
    assert halves < 0.1 * noise, (halves, noise)


@pytest.mark.xdist_group("classifier")
def test_inception_score_bounds(classifier):
    real, _ = bar_images(1000, 13)
    one = real[:1].repeat(500, 1, 1, 1)
    assert score_images(classifier, fake=[one], splits=5)["is"] == pytest.approx(1.0, abs=1e-3)
    # ten classes evenly spread, each recognized: far above 1, at most the number of classes
    spread = score_images(classifier, fake=[real], splits=5)["is"]
    assert 5.0 < spread <= 10.0
