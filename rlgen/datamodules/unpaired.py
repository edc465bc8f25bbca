"""Unpaired two-domain image data for CycleGAN: image folders in the original layout, or a built-in MNIST pair.

Folder layout (as in junyanz/pytorch-CycleGAN-and-pix2pix)::

    <data_dir>/<name>/trainA/*.jpg   trainB/*.jpg   testA/*.jpg   testB/*.jpg

The standard CycleGAN datasets (horse2zebra, monet2photo, ...) are downloaded by name with
``download: true`` on a machine with internet. ``name: mnist`` (the default) needs no download: it is
built from MNIST under ``data_dir`` (``MNIST/raw``): domain A is one half of the training digits,
domain B the *other* half restyled (inverted, strokes thickened by a 3x3 dilation), so no B image is the
translation of an A image. Batches are ``(a, b)``: two ``(B, C, H, W)`` tensors in [-1, 1] (the
generators' tanh range); the predict loader yields ``(images, file_names)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from pytorch_lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.datasets.utils import download_and_extract_archive

from rlgen.datamodules.mnist import check_mnist_files, ensure_mnist, load_mnist
from rlgen.errors import RlgenError, check_range

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
CYCLEGAN_DATASETS = (
    "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
    "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "mini", "mini_pix2pix",
    "mini_colorization", "grumpifycat",
)
MNIST_PAIR = "mnist"
_MODE_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "P": 3, "RGB": 3, "YCbCr": 3, "CMYK": 4,
                  "RGBA": 4}


def restyle_digits(x: torch.Tensor) -> torch.Tensor:
    """Domain B of the MNIST pair: white background, black strokes thickened by a 3x3 dilation.

    ``x``: ``(N, 1, H, W)`` in [0, 1] -> ``(N, 1, H, W)`` in [0, 1]. Deterministic; not a pixelwise map
    (the dilation moves stroke borders), so the translation has to be learned, not looked up.
    """
    thick = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)  # (N, 1, H, W) grey-level dilation
    return 1.0 - thick


def mnist_pair(data_dir: str | Path, train: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """The MNIST pair as tensors in [0, 1]: ``{"A", "labels_A", "B", "labels_B"}``.

    A seeded permutation splits the split's digits in two halves; A keeps the first half as is, B is
    :func:`restyle_digits` of the second half. The labels are for benchmarks (label preservation),
    never for training.
    """
    check_mnist_files(data_dir)
    mnist = load_mnist(data_dir, train=train)
    images = mnist.data.unsqueeze(1).float() / 255.0  # (N, 1, 28, 28)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    half = len(images) // 2
    ia, ib = perm[:half], perm[half : 2 * half]
    return {"A": images[ia], "labels_A": mnist.targets[ia], "B": restyle_digits(images[ib]),
            "labels_B": mnist.targets[ib]}


def image_channels(path: Path) -> int:
    """Channel count of an image file (its header only); a one-line RlgenError if it cannot be read."""
    try:
        with Image.open(path) as img:
            return _MODE_CHANNELS.get(img.mode, len(img.getbands()))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise RlgenError(f"cannot read image {path} ({type(err).__name__}); delete or replace the file") from err


def list_images(folder: Path) -> list[Path]:
    """Sorted image files of ``folder``; RlgenError when it is missing or holds no images."""
    if not folder.is_dir():
        raise RlgenError(
            f"image folder {folder} not found; CycleGAN data needs <data_dir>/<name>/trainA, trainB "
            "(and testA, testB for test), or --data.name mnist for the built-in pair"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
    if not files:
        raise RlgenError(f"image folder {folder} holds no images ({', '.join(IMG_EXTENSIONS)}); add images")
    return files


class ImageFiles(Dataset):
    """Images of one folder with one transform; items are ``(image, file_name)``.

    ``channels`` None keeps the files' own channel count, which must then be the same for all files;
    1 or 3 converts every image to grey or RGB.
    """

    def __init__(self, folder: Path, transform, channels: int | None = None) -> None:
        self.files = list_images(folder)
        counts = {}
        for path in self.files:  # header reads only; also catches unreadable files up front
            counts.setdefault(image_channels(path), path)
        if channels is None and len(counts) > 1:
            found = ", ".join(f"{c} channel(s) e.g. {p.name}" for c, p in sorted(counts.items()))
            raise RlgenError(f"images in {folder} have mixed channel counts ({found}); set --data.channels 1 "
                             "or 3 to convert them all")
        self.channels = channels or next(iter(counts))
        if self.channels not in (1, 3):
            raise RlgenError(f"images in {folder} have {self.channels} channels; set --data.channels 1 or 3")
        self.mode = "L" if self.channels == 1 else "RGB"
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        path = self.files[index]
        try:
            with Image.open(path) as img:
                img = img.convert(self.mode)
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise RlgenError(f"cannot read image {path} ({err}); delete or replace the file") from err
        return self.transform(img), path.name


class TensorImages(Dataset):
    """In-memory images ``(N, C, H, W)`` in [0, 1], mapped to [-1, 1]; items are ``(image, index)``."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images * 2.0 - 1.0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], index


class UnpairedDataset(Dataset):
    """Pairs item i of A with an unrelated item of B: random (training, as in the original) or ``i % len(B)``.

    Length is the larger of the two domains, so every image of both is seen once per epoch on average.
    """

    def __init__(self, a: Dataset, b: Dataset, random_b: bool) -> None:
        self.a, self.b, self.random_b = a, b, random_b

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = int(torch.randint(len(self.b), ())) if self.random_b else index % len(self.b)
        return self.a[index % len(self.a)][0], self.b[j][0]


class UnpairedImageDataModule(LightningDataModule):
    """Two unpaired image domains A and B for CycleGAN; batches ``(a, b)`` in [-1, 1].

    ``name: mnist`` is the built-in pair (see the module docstring), 28x28 grey, no augmentation;
    ``val_size`` digits of each training half are held out for validation. Any other name reads
    ``<data_dir>/<name>/{trainA,trainB,testA,testB}``: training images are resized to ``load_size``,
    randomly cropped to ``crop_size`` and flipped; validation and test images are resized to ``crop_size``.
    Folder datasets validate on testA/testB when present (CycleGAN has no validation split).
    ``predict_dir`` is a folder of images to translate with ``rlgen predict`` (default: the test
    images of domain ``predict_domain``).
    """

    def __init__(
        self,
        data_dir: str = "data",
        name: str = MNIST_PAIR,
        download: bool = False,
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        channels: int | None = None,
        batch_size: int = 1,
        num_workers: int = 2,
        val_size: int = 500,
        predict_dir: str | None = None,
        predict_domain: str = "A",
        seed: int = 0,
    ) -> None:
        """
        Args:
            data_dir: folder holding ``<name>/trainA ...`` (or ``MNIST/raw`` for ``name: mnist``).
            name: ``mnist`` for the built-in pair, else a dataset folder under data_dir (e.g. horse2zebra).
            download: download a standard CycleGAN dataset by name when its folder is missing (``name: mnist``:
                MNIST itself, 11 MB).
            load_size: folder images are first resized to load_size x load_size (training).
            crop_size: then randomly cropped to crop_size x crop_size (the network's input size).
            flip: random horizontal flips of training images.
            channels: convert folder images to 1 (grey) or 3 (RGB) channels; null keeps the files' own.
            batch_size: image pairs per batch (the paper uses 1).
            num_workers: DataLoader worker processes.
            val_size: MNIST pair only: digits per domain held out of training for validation.
            predict_dir: folder of images that ``rlgen predict`` translates (null: domain predict_domain's
                test images).
            predict_domain: the domain (A or B) of the predict images; the model translates them to the other.
            seed: seed of the MNIST pair's split into domains and validation digits.
        """
        super().__init__()
        check_range(">= 1", "data", batch_size=batch_size)
        check_range(">= 0", "data", num_workers=num_workers)
        if not 0 < crop_size <= load_size:
            raise RlgenError(f"data.crop_size must be in [1, load_size={load_size}], got {crop_size}")
        if channels not in (None, 1, 3):
            raise RlgenError(f"data.channels must be 1, 3 or null (keep the files' own), got {channels}")
        if predict_domain not in ("A", "B"):
            raise RlgenError(f"data.predict_domain must be A or B, got {predict_domain!r}")
        if name == MNIST_PAIR and not 0 < val_size < 30000:
            raise RlgenError(f"data.val_size must be between 1 and 29,999 digits, got {val_size}")
        self.save_hyperparameters()
        self.root = Path(data_dir) / name
        self.datasets: dict[str, Dataset] = {}

    def prepare_data(self) -> None:
        name = self.hparams.name
        if name == MNIST_PAIR:
            ensure_mnist(self.hparams.data_dir, self.hparams.download)
            return
        if self.hparams.download and not (self.root / "trainA").is_dir():
            if name not in CYCLEGAN_DATASETS:
                raise RlgenError(f"unknown CycleGAN dataset {name!r}; downloadable: {', '.join(CYCLEGAN_DATASETS)}")
            url = CYCLEGAN_URL.format(name=name)
            try:
                download_and_extract_archive(url, download_root=self.hparams.data_dir, remove_finished=True)
            except Exception as err:  # no internet, proxy, disk full, ...
                raise RlgenError(f"downloading {url} failed ({type(err).__name__}: {err}); download and unzip "
                                 f"it into {self.hparams.data_dir} on a machine with internet") from err

    def setup(self, stage: str) -> None:
        if self.hparams.name == MNIST_PAIR:
            self._setup_mnist(stage)
        else:
            self._setup_folders(stage)

    def train_dataloader(self) -> DataLoader:
        return self._loader(UnpairedDataset(self.datasets["trainA"], self.datasets["trainB"], random_b=True),
                            shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader | list:
        if "valA" not in self.datasets:
            return []  # folder data without testA/testB: no validation
        return self._loader(UnpairedDataset(self.datasets["valA"], self.datasets["valB"], random_b=False))

    def test_dataloader(self) -> DataLoader:
        return self._loader(UnpairedDataset(self.datasets["testA"], self.datasets["testB"], random_b=False))

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["predict"])

    def _setup_mnist(self, stage: str) -> None:
        seed, val = self.hparams.seed, self.hparams.val_size
        if stage in ("fit", "validate") and "trainA" not in self.datasets:
            pair = mnist_pair(self.hparams.data_dir, train=True, seed=seed)
            for d in "AB":
                self.datasets[f"train{d}"] = TensorImages(pair[d][:-val])
                self.datasets[f"val{d}"] = TensorImages(pair[d][-val:])
        if stage in ("test", "predict") and "testA" not in self.datasets:
            pair = mnist_pair(self.hparams.data_dir, train=False, seed=seed)
            for d in "AB":
                self.datasets[f"test{d}"] = TensorImages(pair[d])
        if stage == "predict":
            self._setup_predict(transforms.Compose([transforms.Resize((28, 28)), *_to_tensor()]), channels=1)

    def _setup_folders(self, stage: str) -> None:
        hp = self.hparams
        if not self.root.is_dir():
            hint = " or set --data.download true (needs internet)" if hp.name in CYCLEGAN_DATASETS else ""
            raise RlgenError(f"dataset folder {self.root} not found; put trainA/ trainB/ testA/ testB/ "
                             f"there{hint}, or use --data.name mnist for the built-in pair")
        size = (hp.crop_size, hp.crop_size)
        evaluate = transforms.Compose([transforms.Resize(size, transforms.InterpolationMode.BICUBIC), *_to_tensor()])
        if stage == "fit" and "trainA" not in self.datasets:
            train = transforms.Compose([
                transforms.Resize((hp.load_size, hp.load_size), transforms.InterpolationMode.BICUBIC),
                transforms.RandomCrop(hp.crop_size),
                *([transforms.RandomHorizontalFlip()] if hp.flip else []),
                *_to_tensor(),
            ])
            for d in "AB":
                self.datasets[f"train{d}"] = ImageFiles(self.root / f"train{d}", train, hp.channels)
        if stage in ("fit", "validate", "test") and "testA" not in self.datasets:
            if stage == "fit" and not (self.root / "testA").is_dir() and not (self.root / "testB").is_dir():
                return  # nothing to validate on; training still works
            for d in "AB":
                self.datasets[f"test{d}"] = ImageFiles(self.root / f"test{d}", evaluate, hp.channels)
                self.datasets[f"val{d}"] = self.datasets[f"test{d}"]
        if stage == "predict":
            self._setup_predict(evaluate, hp.channels)

    def _setup_predict(self, transform, channels: int | None) -> None:
        hp = self.hparams
        if hp.predict_dir is not None:
            self.datasets["predict"] = ImageFiles(Path(hp.predict_dir), transform, channels)
        elif hp.name == MNIST_PAIR:
            self.datasets["predict"] = self.datasets[f"test{hp.predict_domain}"]
        else:
            self.datasets["predict"] = ImageFiles(self.root / f"test{hp.predict_domain}", transform, channels)

    def _loader(self, dataset: Dataset, shuffle: bool = False, drop_last: bool = False) -> DataLoader:
        return DataLoader(
            dataset, batch_size=self.hparams.batch_size, shuffle=shuffle, drop_last=drop_last,
            num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def _to_tensor() -> list:
    return [transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]  # [0, 1] -> [-1, 1], any channel count
