"""CycleGAN's networks as in Zhu et al. (2017) and junyanz/pytorch-CycleGAN-and-pix2pix.

- :class:`ResnetGenerator`: c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks (6 for
  128x128 images, 9 for 256x256), two transposed-conv upsamplings, c7s1-out with tanh; reflection
  padding and instance normalization throughout.
- :class:`PatchDiscriminator`: the PatchGAN; with ``n_layers=3`` each output unit sees a 70x70 patch
  of a 256x256 image and the output is a 30x30 grid of real/fake logits. Fewer layers suit small
  images (``n_layers=2``: 34x34 receptive field, a 5x5 grid on 28x28 inputs).
"""

from __future__ import annotations

import torch
from torch import nn

from rlgen.errors import check_range


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """The original ``init_type='normal'``: conv weights ~ N(0, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _norm(channels: int) -> nn.Module:
    # The original's instance norm: no affine parameters, no running statistics.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """``x + [reflect-pad, conv3x3, IN, ReLU, (dropout), reflect-pad, conv3x3, IN](x)``."""

    def __init__(self, channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Image-to-image generator: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` in [-1, 1].

    H and W must be divisible by ``2 ** n_downsampling`` (4 by default: 28, 32, 128, 256 all work).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        dropout: float = 0.0,
    ) -> None:
        """
        Args:
            in_channels: channels of the source domain's images.
            out_channels: channels of the target domain's images.
            ngf: channels of the first conv layer (doubled at each downsampling).
            n_blocks: residual blocks at the bottleneck (the paper: 6 for 128px, 9 for 256px images).
            n_downsampling: stride-2 convolutions before the blocks (and transposed convs after).
            dropout: dropout inside the residual blocks (the original's ``--no_dropout`` is 0).
        """
        super().__init__()
        check_range(">= 1", "ResnetGenerator", in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                    n_blocks=n_blocks)
        check_range(">= 0", "ResnetGenerator", n_downsampling=n_downsampling)
        check_range("in [0, 1)", "ResnetGenerator", dropout=dropout)
        self.factor = 2**n_downsampling
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _norm(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(n_downsampling):  # (B, ch, H, W) -> (B, 2ch, H/2, W/2)
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), _norm(2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, dropout) for _ in range(n_blocks)]
        for _ in range(n_downsampling):  # (B, ch, H, W) -> (B, ch/2, 2H, 2W)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[1] == self.in_channels, (
            f"ResnetGenerator expects (B, {self.in_channels}, H, W) images, got {tuple(x.shape)}"
        )
        assert x.shape[2] % self.factor == 0 and x.shape[3] % self.factor == 0, (
            f"image size {tuple(x.shape[2:])} must be divisible by {self.factor} (2 ** n_downsampling); "
            "change the data's crop_size or the generator's n_downsampling"
        )
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits ``(B, 1, H', W')``, one per overlapping image patch.

    Output grid: 30x30 for 256x256 inputs with ``n_layers=3`` (70x70 patches); 5x5 for 28x28 and 6x6
    for 32x32 inputs with ``n_layers=2`` (34x34 patches).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        """
        Args:
            in_channels: channels of the images it judges.
            ndf: channels of the first conv layer (doubled per layer, at most 8 * ndf).
            n_layers: stride-2 conv layers; 3 gives the 70x70 PatchGAN, 2 suits 28-32 px images.
        """
        super().__init__()
        check_range(">= 1", "PatchDiscriminator", in_channels=in_channels, ndf=ndf, n_layers=n_layers)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):  # stride 2 for n < n_layers, then one stride-1 layer
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1), _norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))  # (B, 1, H', W') logits
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[1] == self.in_channels, (
            f"PatchDiscriminator expects (B, {self.in_channels}, H, W) images, got {tuple(x.shape)}"
        )
        return self.model(x)
