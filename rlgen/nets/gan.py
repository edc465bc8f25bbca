"""Generator and discriminator networks for the GAN family (plain modules, no Lightning).

Every generator maps noise ``(B, latent_dim)`` (and, for the text-conditional ones, token ids) to images
``(B, C, 28, 28)`` in [-1, 1] (tanh) and exposes ``latent_dim``; every discriminator returns one logit
per image ``(B,)``. The GAN systems in ``rlgen.lightning_modules`` take these as injected arguments.
"""

from __future__ import annotations

import math
import string

import torch
from torch import nn

from rlgen.errors import check_range


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): ``out_features`` maxima over ``pieces`` linear pieces each."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x).view(x.shape[0], self.out_features, self.pieces)  # (B, out, pieces)
        return y.max(dim=2).values  # (B, out)


class MLPGenerator(nn.Module):
    """The paper's MNIST generator: fully connected ReLU layers, then one unit per pixel.

    Goodfellow et al. (2014) used two ReLU layers of 1200 units and a sigmoid output; we use tanh so that
    all rlgen generators share the [-1, 1] range, and add BatchNorm (optional) for stabler training.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        hidden: tuple[int, ...] = (1200, 1200),
        image_shape: tuple[int, int, int] = (1, 28, 28),
        batch_norm: bool = True,
    ) -> None:
        """
        Args:
            latent_dim: size of the noise vector z.
            hidden: widths of the ReLU hidden layers.
            image_shape: (C, H, W) of the generated images.
            batch_norm: BatchNorm after each hidden linear layer.
        """
        super().__init__()
        check_range(">= 1", "MLPGenerator", latent_dim=latent_dim, hidden=hidden, image_shape=image_shape)
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if batch_norm else []), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, math.prod(self.image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)  # (B, C, H, W)


class MLPDiscriminator(nn.Module):
    """The paper's MNIST discriminator: maxout layers with dropout (LeakyReLU when ``maxout_pieces`` is 1)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        hidden: tuple[int, ...] = (240, 240),
        maxout_pieces: int = 5,
        dropout: float = 0.5,
    ) -> None:
        """
        Args:
            image_shape: (C, H, W) of the input images.
            hidden: widths of the hidden layers (maxout units or LeakyReLU units).
            maxout_pieces: linear pieces per maxout unit (paper: 5); 1 means Linear + LeakyReLU(0.2).
            dropout: dropout probability on each hidden layer's input (paper: 0.5; the input layer gets 0.2).
        """
        super().__init__()
        check_range(">= 1", "MLPDiscriminator", image_shape=image_shape, hidden=hidden, maxout_pieces=maxout_pieces)
        check_range("in [0, 1)", "MLPDiscriminator", dropout=dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for i, h in enumerate(hidden):
            layers.append(nn.Dropout(min(dropout, 0.2) if i == 0 else dropout))
            if maxout_pieces > 1:
                layers.append(Maxout(width, h, maxout_pieces))
            else:
                layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            width = h
        layers += [nn.Dropout(dropout), nn.Linear(width, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B,) logits


class DCGANGenerator(nn.Module):
    """DCGAN generator for 28x28 images (Radford et al. 2016, sized for MNIST).

    z -> linear to (4c, 7, 7) -> transposed convs to (2c, 14, 14) and (C, 28, 28); BatchNorm + ReLU
    inside, tanh at the output. ``cond_dim > 0`` adds a conditioning vector depth-concatenated with z.
    """

    def __init__(self, latent_dim: int = 100, channels: int = 32, out_channels: int = 1, cond_dim: int = 0,
                 hidden: int = 0) -> None:
        """
        Args:
            latent_dim: size of the noise vector z.
            channels: base width c (the layers have 4c and 2c channels).
            out_channels: channels of the generated image.
            cond_dim: size of a conditioning vector concatenated with z (0: unconditional).
            hidden: width of a fully connected ReLU layer before the projection to (4c, 7, 7) (0: none;
                1024 with c = 32 is the InfoGAN MNIST generator).
        """
        super().__init__()
        check_range(">= 1", "DCGANGenerator", latent_dim=latent_dim, channels=channels, out_channels=out_channels)
        check_range(">= 0", "DCGANGenerator", cond_dim=cond_dim, hidden=hidden)
        self.latent_dim, self.cond_dim = latent_dim, cond_dim
        c = channels
        fc = [nn.Linear(latent_dim + cond_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)
              ] if hidden else []
        self.project = nn.Sequential(
            *fc,
            nn.Linear(hidden or latent_dim + cond_dim, 4 * c * 7 * 7, bias=False), nn.BatchNorm1d(4 * c * 7 * 7),
            nn.ReLU(inplace=True), nn.Unflatten(1, (4 * c, 7, 7)),  # (B, 4c, 7, 7)
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(inplace=True),
            # (B, 2c, 14, 14)
            nn.ConvTranspose2d(2 * c, out_channels, 4, 2, 1), nn.Tanh(),  # (B, C, 28, 28)
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim:
            assert cond is not None and cond.shape == (z.shape[0], self.cond_dim), (
                f"DCGANGenerator(cond_dim={self.cond_dim}) needs cond of shape (B, {self.cond_dim})"
            )
            z = torch.cat([z, cond], dim=1)  # (B, latent_dim + cond_dim): depth concat on a 1x1 map
        return self.up(self.project(z))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator for 28x28 images: strided convs with LeakyReLU(0.2), BatchNorm after the first.

    (C, 28, 28) -> (c, 14, 14) -> (2c, 7, 7) -> logit. ``cond_dim > 0`` depth-concatenates a conditioning
    vector, replicated over the 7x7 grid, with the last feature maps (Reed et al. 2016), then mixes them
    with a 3x3 conv before the output layer.
    """

    def __init__(self, in_channels: int = 1, channels: int = 64, cond_dim: int = 0, dropout: float = 0.0,
                 spectral_norm: bool = False, hidden: int = 0) -> None:
        """
        Args:
            in_channels: channels of the input images.
            channels: base width c (the layers have c and 2c channels).
            cond_dim: size of a conditioning vector joined to the 7x7 feature maps (0: unconditional).
            dropout: dropout on the 7x7 feature maps (0 disables it).
            spectral_norm: spectral normalization of every weight instead of BatchNorm (Miyato et al. 2018):
                D becomes 1-Lipschitz per layer, which keeps it from overpowering G.
            hidden: width of a fully connected LeakyReLU layer before the output (0: none; 1024 with
                c = 64 is the InfoGAN MNIST discriminator).
        """
        super().__init__()
        check_range(">= 1", "DCGANDiscriminator", in_channels=in_channels, channels=channels)
        check_range(">= 0", "DCGANDiscriminator", cond_dim=cond_dim, hidden=hidden)
        check_range("in [0, 1)", "DCGANDiscriminator", dropout=dropout)
        self.cond_dim = cond_dim
        c = channels
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda layer: layer)
        self.body = nn.Sequential(
            sn(nn.Conv2d(in_channels, c, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),  # (B, c, 14, 14)
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=spectral_norm)),
            nn.Identity() if spectral_norm else nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(dropout),  # (B, 2c, 7, 7)
        )
        self.joint = (
            nn.Sequential(sn(nn.Conv2d(2 * c + cond_dim, 2 * c, 3, 1, 1)), nn.LeakyReLU(0.2, inplace=True))
            if cond_dim else nn.Identity()
        )
        fc = [sn(nn.Linear(2 * c * 7 * 7, hidden, bias=spectral_norm)),
              nn.Identity() if spectral_norm else nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2, inplace=True)
              ] if hidden else []
        self.head = nn.Sequential(nn.Flatten(), *fc, sn(nn.Linear(hidden or 2 * c * 7 * 7, 1)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)  # (B, 2c, 7, 7)
        if self.cond_dim:
            assert cond is not None and cond.shape == (x.shape[0], self.cond_dim), (
                f"DCGANDiscriminator(cond_dim={self.cond_dim}) needs cond of shape (B, {self.cond_dim})"
            )
            tiled = cond[:, :, None, None].expand(-1, -1, *h.shape[2:])  # (B, cond_dim, 7, 7)
            h = self.joint(torch.cat([h, tiled], dim=1))  # (B, 2c, 7, 7)
        return self.head(h).squeeze(1)  # (B,) logits


class CharTokenizer:
    """Lower-cased characters to ids: 0 is padding, unknown characters map to one shared id."""

    alphabet = string.ascii_lowercase + string.digits + " -'"

    def __init__(self, max_length: int = 32) -> None:
        self.max_length = max_length
        self.index = {ch: i + 2 for i, ch in enumerate(self.alphabet)}  # 0: padding, 1: unknown

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 2

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """``(B, L)`` int64 ids, right-padded with 0 and cut at ``max_length`` characters."""
        ids = [[self.index.get(ch, 1) for ch in t.lower().strip()[: self.max_length]] or [1] for t in texts]
        out = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row)
        return out


class CharTextEncoder(nn.Module):
    """phi(t): a character-level bidirectional GRU, then a projection to a few dimensions.

    Token ids ``(B, L)`` -> embeddings -> BiGRU -> last hidden states of both directions ``(B, 2H)`` ->
    Linear + LeakyReLU to ``(B, out_dim)``: the small vector that is depth-concatenated with the
    generator's noise and the discriminator's feature maps. Trained jointly with its GAN network.
    """

    def __init__(self, embed_dim: int = 32, hidden_dim: int = 64, out_dim: int = 16, max_length: int = 32) -> None:
        """
        Args:
            embed_dim: size of each character embedding.
            hidden_dim: GRU hidden size per direction.
            out_dim: size of the projected text code.
            max_length: captions are cut to this many characters.
        """
        super().__init__()
        check_range(">= 1", "CharTextEncoder", embed_dim=embed_dim, hidden_dim=hidden_dim, out_dim=out_dim,
                    max_length=max_length)
        self.tokenizer = CharTokenizer(max_length)
        self.out_dim = out_dim
        self.embed = nn.Embedding(self.tokenizer.vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.project = nn.Sequential(nn.Linear(2 * hidden_dim, out_dim), nn.LeakyReLU(0.2, inplace=True))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = (tokens != 0).sum(1).clamp(min=1).cpu()  # (B,)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.gru(packed)  # (2, B, H): last state of each direction
        return self.project(torch.cat([h[0], h[1]], dim=1))  # (B, out_dim)


class TextConditionalGenerator(nn.Module):
    """G(z, t): a :class:`CharTextEncoder` whose code is depth-concatenated with z in a DCGAN generator."""

    def __init__(self, latent_dim: int = 100, channels: int = 32, text_dim: int = 16, out_channels: int = 1) -> None:
        """
        Args:
            latent_dim: size of the noise vector z.
            channels: base width of the DCGAN generator.
            text_dim: size of the projected text code phi(t).
            out_channels: channels of the generated image.
        """
        super().__init__()
        check_range(">= 1", "TextConditionalGenerator", latent_dim=latent_dim, channels=channels,
                    text_dim=text_dim, out_channels=out_channels)
        self.latent_dim = latent_dim
        self.text_encoder = CharTextEncoder(out_dim=text_dim)
        self.image = DCGANGenerator(latent_dim, channels, out_channels, cond_dim=text_dim)

    def forward(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.image(z, self.text_encoder(tokens))  # (B, C, 28, 28)


class TextConditionalDiscriminator(nn.Module):
    """D(x, t): a DCGAN discriminator whose 7x7 feature maps are depth-concatenated with its own phi(t)."""

    def __init__(self, channels: int = 64, text_dim: int = 16, in_channels: int = 1, dropout: float = 0.0) -> None:
        """
        Args:
            channels: base width of the DCGAN discriminator.
            text_dim: size of the projected text code phi(t).
            in_channels: channels of the input images.
            dropout: dropout on the 7x7 feature maps.
        """
        super().__init__()
        check_range(">= 1", "TextConditionalDiscriminator", channels=channels, text_dim=text_dim,
                    in_channels=in_channels)
        check_range("in [0, 1)", "TextConditionalDiscriminator", dropout=dropout)
        self.text_encoder = CharTextEncoder(out_dim=text_dim)
        self.image = DCGANDiscriminator(in_channels, channels, cond_dim=text_dim, dropout=dropout)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.image(x, self.text_encoder(tokens))  # (B,) logits
