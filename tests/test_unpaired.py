"""UnpairedImageDataModule: the built-in MNIST pair, image folders, and one-line errors for bad folders."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image

from rlgen.datamodules import unpaired
from rlgen.datamodules.unpaired import UnpairedImageDataModule, mnist_pair, restyle_digits
from rlgen.errors import RlgenError

# ---------------------------------------------------------------- the MNIST pair


def test_restyle_inverts_and_thickens():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0  # one bright pixel
    expected = torch.ones(1, 1, 5, 5)
    expected[0, 0, 1:4, 1:4] = 0.0  # becomes a black 3x3 block on white
    assert torch.equal(restyle_digits(x), expected)


def test_mnist_pair_is_deterministic_and_unpaired(mnist_dir):
    one, two = mnist_pair(mnist_dir, train=True), mnist_pair(mnist_dir, train=True)
    for key in ("A", "B", "labels_A", "labels_B"):
        assert torch.equal(one[key], two[key])
    assert one["A"].shape == one["B"].shape == (3000, 1, 28, 28)
    assert not torch.equal(mnist_pair(mnist_dir, train=True, seed=1)["A"], one["A"])
    # No B image is the restyling of an A image: the two halves come from different digits.
    styled_a = {bytes(im.numpy().tobytes()) for im in restyle_digits(one["A"])}
    assert not styled_a & {bytes(im.numpy().tobytes()) for im in one["B"]}
    assert one["B"].mean() > 0.5 > one["A"].mean()  # B is mostly white background


def test_mnist_datamodule_batches(mnist_dir):
    dm = UnpairedImageDataModule(data_dir=str(mnist_dir), batch_size=4, num_workers=0, val_size=100)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.datasets["trainA"]) == len(dm.datasets["trainB"]) == 2900
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (4, 1, 28, 28)
    assert a.min() >= -1 and a.max() <= 1 and b.min() >= -1 and b.max() <= 1
    va, vb = next(iter(dm.val_dataloader()))
    va2, vb2 = next(iter(dm.val_dataloader()))
    assert torch.equal(va, va2) and torch.equal(vb, vb2)  # validation pairs are fixed


def test_mnist_pair_needs_mnist(tmp_path):
    dm = UnpairedImageDataModule(data_dir=str(tmp_path), num_workers=0)
    with pytest.raises(RlgenError, match="MNIST not found"):
        dm.prepare_data()


# ---------------------------------------------------------------- image folders

def _images(folder: Path, n: int, mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new(mode, size, color=(30 * i, 10, 200) if mode == "RGB" else 30 * i).save(folder / f"{i:03d}.png")


def _folder_dm(root: Path, **kwargs) -> UnpairedImageDataModule:
    args = {"data_dir": str(root), "name": "toy", "load_size": 36, "crop_size": 32, "batch_size": 2,
            "num_workers": 0} | kwargs
    return UnpairedImageDataModule(**args)


def test_folder_batches_are_resized_cropped_and_unpaired(tmp_path):
    toy = tmp_path / "toy"
    _images(toy / "trainA", 5)
    _images(toy / "trainB", 3, size=(64, 64))
    _images(toy / "testA", 2)
    _images(toy / "testB", 2)
    dm = _folder_dm(tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (2, 3, 32, 32)
    assert len(dm.train_dataloader().dataset) == 5  # the larger domain sets the epoch length
    va, _ = next(iter(dm.val_dataloader()))  # validation uses testA / testB, resized to crop_size
    assert va.shape == (2, 3, 32, 32)


def test_folder_without_test_images_trains_without_validation(tmp_path):
    _images(tmp_path / "toy" / "trainA", 2)
    _images(tmp_path / "toy" / "trainB", 2)
    dm = _folder_dm(tmp_path)
    dm.setup("fit")
    assert dm.val_dataloader() == []


def test_predict_folder_yields_images_and_names(tmp_path, mnist_dir):
    _images(tmp_path / "mine", 3, mode="L", size=(50, 50))
    dm = UnpairedImageDataModule(data_dir=str(mnist_dir), batch_size=2, num_workers=0,
                                 predict_dir=str(tmp_path / "mine"))
    dm.setup("predict")
    x, names = next(iter(dm.predict_dataloader()))
    assert x.shape == (2, 1, 28, 28) and list(names) == ["000.png", "001.png"]


def _only_b(t: Path) -> None:
    _images(t / "toy" / "trainB", 2)


def _empty_b(t: Path) -> None:
    _images(t / "toy" / "trainA", 2)
    (t / "toy" / "trainB").mkdir()


def _mixed_b(t: Path) -> None:
    _images(t / "toy" / "trainA", 2)
    _images(t / "toy" / "trainB", 1)
    Image.new("L", (9, 9)).save(t / "toy" / "trainB" / "grey.png")


def _broken_b(t: Path) -> None:
    _images(t / "toy" / "trainA", 2)
    _images(t / "toy" / "trainB", 1)
    (t / "toy" / "trainB" / "broken.jpg").write_bytes(b"not an image")


@pytest.mark.parametrize(("setup", "match"), [
    (lambda t: None, "dataset folder .*toy not found"),
    (_only_b, "trainA not found"),
    (_empty_b, "trainB holds no images"),
    (_mixed_b, "mixed channel counts .*--data.channels"),
    (_broken_b, "cannot read image .*broken.jpg"),
])
def test_bad_folders_raise_one_line_errors(tmp_path, setup, match):
    setup(tmp_path)
    with pytest.raises(RlgenError, match=match) as err:
        _folder_dm(tmp_path).setup("fit")
    assert "\n" not in str(err.value)


def test_channels_option_converts_mixed_folders(tmp_path):
    _mixed_b(tmp_path)
    dm = _folder_dm(tmp_path, channels=3)
    dm.setup("fit")
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (2, 3, 32, 32)


def test_download_errors(tmp_path, monkeypatch):
    with pytest.raises(RlgenError, match="unknown CycleGAN dataset 'toy'"):
        _folder_dm(tmp_path, download=True).prepare_data()

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(unpaired, "download_and_extract_archive", offline)
    with pytest.raises(RlgenError, match="downloading http://.*horse2zebra.zip failed .*no internet"):
        _folder_dm(tmp_path, name="horse2zebra", download=True).prepare_data()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"batch_size": 0}, "batch_size"), ({"crop_size": 300, "load_size": 286}, "crop_size"),
    ({"channels": 2}, "channels"), ({"predict_domain": "C"}, "predict_domain"), ({"val_size": 0}, "val_size"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(RlgenError, match=match):
        UnpairedImageDataModule(**kwargs)
