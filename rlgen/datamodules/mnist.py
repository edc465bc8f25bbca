"""MNIST through torchvision, with the three input transforms the image models need."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import transforms
from torchvision.datasets import MNIST

from rlgen.errors import RlgenError, check_range

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DynamicBinarize:
    """Replace each pixel intensity p in [0, 1] by a fresh Bernoulli(p) sample on every access.

    This is the "dynamically binarized MNIST" of the VAE / IWAE literature: the model sees a new
    binarization of each image every epoch, which acts as a regularizer.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(x)


def mnist_transform(kind: str) -> transforms.Compose:
    """The tensor transform for ``kind`` in ``plain`` ([0, 1]), ``normalize`` or ``binarize``."""
    steps: list = [transforms.ToTensor()]  # (1, 28, 28) float in [0, 1]
    if kind == "normalize":
        steps.append(transforms.Normalize((MNIST_MEAN,), (MNIST_STD,)))
    elif kind == "binarize":
        steps.append(DynamicBinarize())
    return transforms.Compose(steps)


def check_mnist_files(data_dir: str | Path) -> None:
    """Raise a one-line :class:`RlgenError` unless the four raw MNIST files are under ``data_dir``."""
    raw = Path(data_dir) / "MNIST" / "raw"
    missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
    if missing:
        raise RlgenError(
            f"MNIST not found: expected {', '.join(MNIST_FILES)} in {raw} (missing: {', '.join(missing)}); "
            "set --data.download true to download it, or point --data.data_dir at a folder that holds MNIST/raw"
        )


def ensure_mnist(data_dir: str | Path, download: bool) -> None:
    """Download MNIST into ``data_dir`` if it is not there and ``download`` is set; raise a one-line
    :class:`RlgenError` if it is still missing."""
    raw = Path(data_dir) / "MNIST" / "raw"
    if download and not all((raw / name).is_file() for name in MNIST_FILES):
        try:
            MNIST(str(data_dir), train=True, download=True)
            MNIST(str(data_dir), train=False, download=True)
        except Exception as err:  # no internet, proxy, disk full, ...
            raise RlgenError(
                f"MNIST is not in {raw} and downloading it failed ({type(err).__name__}: {_first_line(err)}); "
                f"without internet, copy {', '.join(MNIST_FILES)} from a machine that has it into {raw}, "
                "or point --data.data_dir at a folder that holds MNIST/raw"
            ) from err
    check_mnist_files(data_dir)


def load_mnist(data_dir: str | Path, train: bool, transform: Any = None) -> MNIST:
    """torchvision's MNIST split, or a one-line :class:`RlgenError` when its files are corrupt or truncated."""
    split = "train" if train else "t10k"
    try:
        dataset = MNIST(str(data_dir), train=train, transform=transform)
        if len(dataset.data) != len(dataset.targets):
            raise ValueError(f"{len(dataset.data)} images but {len(dataset.targets)} labels")
    except Exception as err:  # torchvision asserts on sizes, and fails in numpy/torch on garbage
        raw = Path(data_dir) / "MNIST" / "raw"
        raise RlgenError(
            f"MNIST files {split}-images-idx3-ubyte and {split}-labels-idx1-ubyte in {raw} cannot be read "
            f"({type(err).__name__}: {_first_line(err) or 'sizes do not match'}): they are corrupt or truncated; "
            "delete them and run again with --data.download true, or copy intact ones there"
        ) from err
    return dataset


class MNISTDataModule(LightningDataModule):
    """MNIST digits: 55,000 train / 5,000 validation (seeded split) / 10,000 test images.

    Batches are ``(image, label)`` with images of shape ``(B, 1, 28, 28)``.
    """

    def __init__(
        self,
        data_dir: str = "data",
        download: bool = True,
        batch_size: int = 128,
        num_workers: int = 2,
        val_size: int = 5000,
        transform: Literal["plain", "normalize", "binarize"] = "plain",
        seed: int = 42,
    ) -> None:
        """
        Args:
            data_dir: folder that holds (or receives) ``MNIST/raw``.
            download: download MNIST with torchvision when its files are not in ``data_dir`` (11 MB).
            batch_size: images per batch (per process under DDP).
            num_workers: DataLoader worker processes.
            val_size: images held out of the 60,000 training images for validation.
            transform: ``plain`` ([0, 1]), ``normalize`` (zero mean, unit variance) or ``binarize``
                (a fresh Bernoulli sample of each image every time it is read).
            seed: seed of the train/validation split.
        """
        super().__init__()
        check_range(">= 1", "data", batch_size=batch_size)
        check_range(">= 0", "data", num_workers=num_workers)
        if not 0 < val_size < 60000:
            raise RlgenError(f"data.val_size must be between 1 and 59,999 images, got {val_size}")
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.download = download
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_size = val_size
        self.transform = mnist_transform(transform)
        self.seed = seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def prepare_data(self) -> None:
        ensure_mnist(self.data_dir, self.download)

    def setup(self, stage: str) -> None:
        check_mnist_files(self.data_dir)
        if stage in ("fit", "validate") and self.train_set is None:
            full = load_mnist(self.data_dir, train=True, transform=self.transform)
            if self.val_size >= len(full):
                raise RlgenError(f"data.val_size={self.val_size} leaves no training images (MNIST has {len(full)})")
            lengths = [len(full) - self.val_size, self.val_size]
            self.train_set, self.val_set = random_split(
                full, lengths, generator=torch.Generator().manual_seed(self.seed)
            )
        if stage in ("test", "predict") and self.test_set is None:
            self.test_set = load_mnist(self.data_dir, train=False, transform=self.transform)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def _loader(self, dataset: Dataset, shuffle: bool = False, drop_last: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [""])[0]
