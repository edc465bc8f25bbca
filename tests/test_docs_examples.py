"""docs/extending.md's example is real code: its module, config and test, taken from the page as written, run."""

from __future__ import annotations

import importlib.util
import re
import sys

from tests.conftest import REPO

PAGE = REPO / "docs" / "extending.md"


def blocks(language: str) -> list[str]:
    """The page's fenced code blocks in ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL)


def test_the_extending_example_trains_through_the_cli(mnist_dir, tmp_path, monkeypatch):
    module_code, test_code = blocks("python")[:2]
    (config_code,) = blocks("yaml")
    # the module, importable under the name the page gives it (rlgen/lightning_modules/lsgan.py)
    name = "rlgen.lightning_modules.lsgan"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(module_code, str(PAGE), "exec"), module.__dict__)
    # the config, where the page puts it (configs/lsgan/mnist.yaml), here below tmp_path
    configs = tmp_path / "configs"
    (configs / "lsgan").mkdir(parents=True)
    (configs / "lsgan" / "mnist.yaml").write_text(config_code)
    # the page's own tests, with CONFIGS pointing at that folder
    namespace: dict = {}
    exec(compile(test_code, str(PAGE), "exec"), namespace)
    namespace["CONFIGS"] = configs
    namespace["test_losses_by_hand"]()
    (tmp_path / "run").mkdir()
    namespace["test_one_batch_through_the_cli"](mnist_dir, tmp_path / "run", monkeypatch)
