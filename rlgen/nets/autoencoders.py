"""Encoders and decoders for 28x28 single-channel images (MNIST): an MLP pair and a conv pair.

Encoders map ``(B, 1, 28, 28)`` to ``(B, out_features)`` (a code, or the posterior mean and log-variance
of a VAE stacked side by side); decoders map ``(B, latent_dim)`` to ``(B, 1, 28, 28)`` logits, so the
systems choose the output nonlinearity that matches their likelihood.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
IMAGE_PIXELS = 28 * 28


class MLPEncoder(nn.Module):
    """Flatten, then ``784 -> hidden_dim -> hidden_dim // 2 -> out_features`` with ReLUs."""

    def __init__(self, out_features: int, hidden_dim: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),  # (B, 784)
            nn.Linear(IMAGE_PIXELS, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim // 2),
            nn.ReLU(),
            nn.Linear(hidden_dim // 2, out_features),  # (B, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """``latent_dim -> hidden_dim // 2 -> hidden_dim -> 784`` with ReLUs, reshaped to image logits."""

    def __init__(self, latent_dim: int, hidden_dim: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim // 2),
            nn.ReLU(),
            nn.Linear(hidden_dim // 2, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, IMAGE_PIXELS),  # (B, 784)
            nn.Unflatten(1, IMAGE_SHAPE),  # (B, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28 -> 14 -> 7), then a hidden fully connected layer."""

    def __init__(self, out_features: int, hidden_dim: int = 256, channels: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1),  # (B, C, 14, 14)
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),  # (B, 2C, 7, 7)
            nn.ReLU(),
            nn.Flatten(),  # (B, 2C * 49)
            nn.Linear(2 * channels * 49, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_features),  # (B, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: fully connected layers, then two stride-2 transposed convolutions."""

    def __init__(self, latent_dim: int, hidden_dim: int = 256, channels: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 2 * channels * 49),
            nn.ReLU(),
            nn.Unflatten(1, (2 * channels, 7, 7)),  # (B, 2C, 7, 7)
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),  # (B, C, 14, 14)
            nn.ReLU(),
            nn.ConvTranspose2d(channels, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_encoder_decoder(
    arch: Literal["mlp", "conv"], latent_dim: int, encoder_out: int, hidden_dim: int
) -> tuple[nn.Module, nn.Module]:
    """The (encoder, decoder) pair for ``arch``; the encoder emits ``encoder_out`` features."""
    if arch == "mlp":
        return MLPEncoder(encoder_out, hidden_dim), MLPDecoder(latent_dim, hidden_dim)
    if arch == "conv":
        return ConvEncoder(encoder_out, hidden_dim), ConvDecoder(latent_dim, hidden_dim)
    raise ValueError(f"unknown arch {arch!r}: use 'mlp' or 'conv'")
