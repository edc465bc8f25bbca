import json

import pytest

from bench.scaling import main

# Starts processes of its own: these tests run one after another on one xdist worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("processes")


def test_scaling_smoke_writes_results(tmp_path, mnist_dir):
    result = main(["--smoke", f"--data-dir={mnist_dir}", f"--out-dir={tmp_path}"])
    saved = json.loads((tmp_path / "scaling_smoke.json").read_text())
    assert saved["ranks_reporting"] == {"1": 1, "2": 2}, "with 2 processes both DDP ranks must train and count"
    assert saved["samples_per_s_1"] > 0 and saved["samples_per_s_2"] > 0 and result == saved
