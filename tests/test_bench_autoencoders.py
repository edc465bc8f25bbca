"""The autoencoder / VAE benchmarks run in smoke mode and write the JSON and PNG they promise."""

from __future__ import annotations

import json

from bench import autoencoders, overhead, vae


def test_vae_bench_smoke(mnist_dir, tmp_path):
    vae.main(["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}"])
    result = json.loads((tmp_path / "vae.json").read_text())
    assert result["smoke"] is True and result["iwae_k"] == 4
    assert 0 < result["test_nll_iwae"] < 1000 and 0 < result["test_neg_elbo"] < 1000
    assert result["passed"] == (result["test_nll_iwae"] <= result["target_nll"]) and result["passed"] is False
    assert len(result["val_neg_elbo_per_epoch"]) == 1
    assert (tmp_path / "vae.png").stat().st_size > 0


def test_autoencoders_bench_smoke(mnist_dir, tmp_path):
    autoencoders.main(["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}"])
    result = json.loads((tmp_path / "autoencoders.json").read_text())
    assert set(result["models"]) == {"AE", "DAE 25% mask", "DAE 50% mask"}
    for model in result["models"].values():
        mse = model["test_recon_mse"]
        assert set(mse) == {"clean", "mask25", "mask50"} and all(0 < v < 1 for v in mse.values())
    assert (tmp_path / "autoencoders.png").stat().st_size > 0


def test_overhead_bench_smoke(mnist_dir, tmp_path):
    overhead.main(["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}"])
    result = json.loads((tmp_path / "overhead.json").read_text())
    assert len(result["rlgen_s"]) == len(result["plain_s"]) == len(result["ratios"]) == 1
    assert result["median_ratio"] > 0
    # the same work on both sides: the config's model and batch size, as many batches
    assert result["batches_per_epoch"] == {"rlgen": [3], "plain": [3]}
    assert (tmp_path / "overhead.png").stat().st_size > 0
