"""bench/scaling.py: its smoke runs a real 1-process and a real 2-process (gloo) fit of the VAE, and stops unless
both DDP ranks end with identical, trained parameters; this is the suite's DDP run of an image model."""

import json

import pytest

from bench.scaling import checked_rate, main

# Starts processes of its own: these tests run one after another on one xdist worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("processes")


def test_scaling_smoke_writes_results(tmp_path, mnist_dir):
    result = main(["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}"])
    saved = json.loads((tmp_path / "scaling_smoke.json").read_text())
    assert saved["ranks_reporting"] == {"1": 1, "2": 2}, "with 2 processes both DDP ranks must train and count"
    assert saved["samples_per_s_1"] > 0 and saved["samples_per_s_2"] > 0 and result == saved


def test_scaling_stops_when_ranks_diverge_or_do_not_train():
    same = [{"samples_per_s": 10.0, "digest_start": "a", "digest_end": "b"},
            {"samples_per_s": 12.0, "digest_start": "a", "digest_end": "b"}]
    assert checked_rate(2, same) == (22.0, 2)
    with pytest.raises(SystemExit, match="different parameters"):
        checked_rate(2, [same[0], {**same[1], "digest_end": "c"}])
    with pytest.raises(SystemExit, match="unchanged"):
        checked_rate(1, [{**same[0], "digest_end": "a"}])
