"""bf16 mixed precision and the opt-in torch.compile flag run an image model on the CPU."""

from __future__ import annotations

import pytest

from rlgen.cli import run
from tests.conftest import CONFIGS


def ae_args(mnist_dir) -> list[str]:
    return ["fit", "-c", str(CONFIGS / "ae" / "mnist.yaml"), f"--data.data_dir={mnist_dir}", "--data.num_workers=0",
            "--data.batch_size=16", "--trainer.max_steps=3", "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false", "--trainer.callbacks=[]"]


def test_bf16_mixed_precision(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run([*ae_args(mnist_dir), "-c", str(CONFIGS / "trainer" / "bf16.yaml")])
    assert cli.trainer.precision == "bf16-mixed" and cli.trainer.global_step == 3


@pytest.mark.slow
def test_compile_flag(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run([*ae_args(mnist_dir), "--compile=true"])
    assert cli.trainer.global_step == 3
    assert hasattr(cli.model, "_orig_mod"), "the model must have been compiled"


def test_nvml_check_is_off_without_a_gpu_driver_and_kept_with_one(monkeypatch):
    """Lightning's NVML-based CUDA check costs every optimizer step a failed NVML load where no NVIDIA driver is:
    rlgen turns it off there, and only there."""
    import os
    import sys

    from rlgen.cli.app import skip_nvml_without_gpu_driver

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # as lightning_fabric leaves it
    monkeypatch.setattr(os.path, "exists", lambda path: path == "/proc/driver/nvidia")
    skip_nvml_without_gpu_driver()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1", "a GPU machine keeps Lightning's choice"
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    skip_nvml_without_gpu_driver()
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "0"
