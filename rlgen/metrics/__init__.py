"""Offline image metrics: FID and Inception Score with rlgen's MNIST classifier as feature extractor."""

from rlgen.metrics.classifier_metrics import (
    ClassifierFeatures,
    load_classifier,
    make_fid,
    make_inception_score,
    score_images,
)

__all__ = ["ClassifierFeatures", "load_classifier", "make_fid", "make_inception_score", "score_images"]
