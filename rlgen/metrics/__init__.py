"""Offline image metrics: FID and Inception Score with rlgen's MNIST classifier as feature extractor.

Load the classifier with :func:`rlgen.lightning_modules.classifier.load_classifier`; nothing here
imports the LightningModules (they import these metrics).
"""

from rlgen.metrics.classifier_metrics import ClassifierFeatures, make_fid, make_inception_score, score_images

__all__ = ["ClassifierFeatures", "make_fid", "make_inception_score", "score_images"]
