"""The MNIST classifier: shapes, learning on the fake digits, checkpoint loading, bad inputs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from rlgen.datamodules import MNISTDataModule
from rlgen.errors import RlgenError
from rlgen.lightning_modules.classifier import Classifier, load_classifier


def save_classifier(model: Classifier, path) -> None:
    """A checkpoint that ``Classifier.load_from_checkpoint`` reads, written without a Trainer."""
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": pl.__version__}, path)


def test_shapes_and_input_range_check():
    model = Classifier(width=8).eval()
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert model.features(x).shape == (5, 32) and model.num_features == 32
    # features feed the head: logits are a linear map of the penultimate layer
    torch.testing.assert_close(model.net.head(model.features(x)), model(x))
    with pytest.raises(AssertionError, match=r"\(B, 1, H, W\)"):
        model(torch.rand(5, 3, 28, 28))


@pytest.mark.parametrize("kwargs", [{"lr": -1.0}, {"lr": 0.0}, {"num_classes": 1}, {"dropout": 1.0},
                                    {"width": 0}, {"std": 0.0}, {"weight_decay": -0.1}])
def test_bad_arguments(kwargs):
    with pytest.raises(RlgenError):
        Classifier(**kwargs)


def test_learns_fake_digits_and_reloads(mnist_dir, tmp_path):
    torch.manual_seed(0)
    dm = MNISTDataModule(data_dir=str(mnist_dir), batch_size=32, num_workers=0, val_size=500)
    model = Classifier(width=8, lr=1e-2)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=60, limit_val_batches=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)
    assert trainer.callback_metrics["test/acc"] > 0.9, "the bar position is an easy feature"

    path = tmp_path / "clf.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    loaded = load_classifier(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_load_classifier_errors(tmp_path):
    with pytest.raises(RlgenError, match="python -m bench.classifier"):
        load_classifier(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(RlgenError, match="not a Classifier checkpoint"):
        load_classifier(tmp_path / "other.ckpt")
