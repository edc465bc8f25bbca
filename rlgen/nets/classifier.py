"""A small all-convolutional image classifier: the feature extractor behind rlgen's FID / IS."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Five 3x3 conv layers (two max-pools) and global average pooling, then a linear head.

    About 140k parameters: > 99% MNIST test accuracy after a few epochs, small enough that its
    checkpoint can live in the repository. ``features`` is the ``(B, 4 * width)`` penultimate vector.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, dropout: float = 0.2) -> None:
        """
        Args:
            in_channels: image channels (1 for MNIST, 3 for colour images).
            num_classes: number of output classes.
            width: channels of the first block; the blocks have width, 2 * width and 4 * width channels.
            dropout: dropout probability before the linear head.
        """
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv_bn_relu(in_channels, w), _conv_bn_relu(w, w), nn.MaxPool2d(2),  # (B, w, H/2, W/2)
            _conv_bn_relu(w, 2 * w), _conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),  # (B, 2w, H/4, W/4)
            _conv_bn_relu(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 4w)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))
        self.num_features = 4 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate ``(B, 4 * width)`` representation of images ``(B, C, H, W)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, num_classes) logits
