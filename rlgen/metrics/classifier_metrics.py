"""FID and Inception Score on MNIST, computed with rlgen's own digit classifier instead of Inception-v3.

No Inception weights can be downloaded offline, and MNIST digits are not ImageNet photos anyway, so the
torchmetrics metrics get a custom ``feature`` module: the penultimate layer of a trained classifier for
FID, its logits for the Inception Score. The classifier is rlgen's
:class:`~rlgen.lightning_modules.classifier.Classifier`, read from its checkpoint with
:func:`~rlgen.lightning_modules.classifier.load_classifier`; this module needs only what every such
network has: ``forward(x)`` (logits), ``features(x)``, ``num_features`` and ``num_classes``.
Scores are therefore comparable between rlgen runs (same classifier checkpoint), not with papers'
Inception-based numbers. Every function takes images ``(B, 1, 28, 28)`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore


class ClassifierFeatures(nn.Module):
    """A frozen classifier seen as a torchmetrics ``feature`` module: ``(B, C, H, W)`` -> ``(B, F)``.

    ``output="features"`` gives the penultimate layer (for FID), ``output="logits"`` the class logits
    (for the Inception Score). ``num_features`` spares torchmetrics its dummy forward pass.
    """

    def __init__(self, classifier: nn.Module, output: Literal["features", "logits"] = "features") -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.output = output
        self.num_features = classifier.num_features if output == "features" else classifier.num_classes

    def train(self, mode: bool = True) -> ClassifierFeatures:
        """Stay in eval mode (BatchNorm running statistics, no dropout) whatever the parent module does."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.output == "features":
            return self.classifier.features(x)  # (B, F)
        return self.classifier(x)  # (B, num_classes)


def make_fid(classifier: nn.Module) -> FrechetInceptionDistance:
    """A torchmetrics FID on the classifier's penultimate features; ``update(imgs, real=...)`` with [0, 1] images."""
    return FrechetInceptionDistance(feature=ClassifierFeatures(classifier, "features"), reset_real_features=True)


def make_inception_score(classifier: nn.Module, splits: int = 10) -> InceptionScore:
    """A torchmetrics Inception Score on the classifier's logits; ``update(imgs)`` with [0, 1] images."""
    return InceptionScore(feature=ClassifierFeatures(classifier, "logits"), splits=splits)


@torch.no_grad()
def score_images(
    classifier: nn.Module,
    fake: Iterable[torch.Tensor],
    real: Iterable[torch.Tensor] | None = None,
    splits: int = 10,
) -> dict[str, float]:
    """Inception Score of ``fake`` batches, and FID against ``real`` batches when given.

    Returns ``{"is": mean over splits, "is_std": std over splits, "fid": ...}`` (no ``fid`` without
    ``real``). Batches are ``(B, C, H, W)`` in [0, 1]; the metrics run on the classifier's device.
    """
    device = next(classifier.parameters()).device
    inception = make_inception_score(classifier, splits).to(device)
    fid = make_fid(classifier).to(device) if real is not None else None
    for batch in fake:
        batch = batch.to(device)
        inception.update(batch)
        if fid is not None:
            fid.update(batch, real=False)
    if fid is not None:
        for batch in real:
            fid.update(batch.to(device), real=True)
    is_mean, is_std = inception.compute()
    scores = {"is": float(is_mean), "is_std": float(is_std)}
    if fid is not None:
        scores["fid"] = float(fid.compute())
    return scores
