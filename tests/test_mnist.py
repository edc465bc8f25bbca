import pytest
import torch

from rlgen.datamodules import MNISTDataModule
from rlgen.errors import RlgenError


def test_split_is_seeded_and_shapes(mnist_dir):
    def val_indices(seed):
        dm = MNISTDataModule(data_dir=str(mnist_dir), val_size=500, num_workers=0, batch_size=32, seed=seed)
        dm.prepare_data()
        dm.setup("fit")
        assert len(dm.train_set) == 5500 and len(dm.val_set) == 500
        return dm.val_set.indices

    assert val_indices(0) == val_indices(0)
    assert val_indices(0) != val_indices(1)
    dm = MNISTDataModule(data_dir=str(mnist_dir), val_size=500, num_workers=0, batch_size=32)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and y.shape == (32,)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_transforms(mnist_dir):
    plain = MNISTDataModule(data_dir=str(mnist_dir), transform="plain")
    norm = MNISTDataModule(data_dir=str(mnist_dir), transform="normalize")
    binar = MNISTDataModule(data_dir=str(mnist_dir), transform="binarize")
    for dm in (plain, norm, binar):
        dm.setup("test")
    x = plain.test_set[0][0]
    torch.testing.assert_close(norm.test_set[0][0], (x - 0.1307) / 0.3081)
    torch.manual_seed(0)
    b1, b2 = binar.test_set[0][0], binar.test_set[0][0]
    assert set(b1.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(b1, b2), "dynamic binarization must draw a fresh sample on each access"
    # Pixels at 0 stay 0 and pixels at 1 stay 1; the mean matches the intensities.
    assert torch.all(b1[x == 0] == 0) and torch.all(b1[x == 1] == 1)
    many = torch.stack([binar.test_set[0][0] for _ in range(400)]).mean(0)
    assert (many - x).abs().max() < 0.15


def test_missing_data_names_directory_and_files(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(RlgenError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in msg
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        assert name in msg
    assert "--data.data_dir" in msg


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"val_size": 0}, {"val_size": 60000}])
def test_bad_arguments(kwargs):
    with pytest.raises(RlgenError):
        MNISTDataModule(**kwargs)


def test_missing_mnist_downloads_by_default_and_explains_an_offline_failure(tmp_path, monkeypatch):
    import urllib.error

    from torchvision.datasets import MNIST


    attempts = []

    def offline(self):
        attempts.append(self.root)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(MNIST, "download", offline)
    dm = MNISTDataModule(data_dir=str(tmp_path / "data"), num_workers=0)
    assert dm.download is True
    with pytest.raises(RlgenError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert attempts and "\n" not in message
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert message.startswith(f"MNIST is not in {raw} and downloading it failed (URLError")
    assert "without internet, copy train-images-idx3-ubyte" in message and "--data.data_dir" in message


def test_mnist_already_there_is_not_downloaded_again(mnist_dir, monkeypatch):
    from torchvision.datasets import MNIST


    monkeypatch.setattr(MNIST, "download", lambda self: pytest.fail("MNIST was downloaded although present"))
    MNISTDataModule(data_dir=str(mnist_dir), num_workers=0).prepare_data()
