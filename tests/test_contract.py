"""The model contract (``rlgen.lightning_modules.base.RlgenModule``): every rlgen model declares what the CLI
reads, the declarations name real ``__init__`` arguments, and a plain LightningModule gets the defaults."""

from __future__ import annotations

import inspect

import pytest
from pytorch_lightning.demos.boring_classes import BoringModel

import rlgen.lightning_modules as modules
from rlgen.lightning_modules.base import RlgenModule, declared, default_threads, output_folders

EXPORTED = [getattr(modules, name) for name in modules.__all__]


@pytest.mark.parametrize("cls", EXPORTED, ids=lambda c: c.__name__)
def test_every_model_declares_the_contract_with_real_arguments(cls):
    assert issubclass(cls, RlgenModule), f"{cls.__name__} must inherit RlgenModule (directly or via a system)"
    assert declared(cls) is cls
    # the arguments of its __init__ and of those it passes **kwargs on to (DenoisingAutoEncoder -> AutoEncoder)
    params = {p for base in cls.__mro__ if issubclass(base, RlgenModule)
              for p in inspect.signature(base.__init__).parameters}
    for name in (*cls.RUN_TIME_ARGS, *cls.OUTPUT_ARGS):
        assert name in params, f"{cls.__name__} declares {name}, which is not an __init__ argument"
    assert set(cls.OUTPUT_ARGS) <= set(cls.RUN_TIME_ARGS), "an output folder is chosen by each run, never restored"


def test_a_plain_lightning_module_gets_the_defaults(tmp_path):
    model = BoringModel()
    assert declared(BoringModel) is RlgenModule
    assert declared(BoringModel).ddp_strategy is None and declared(BoringModel).unlogged_metrics({}) == ()
    assert default_threads(model) is None and output_folders(model) == []


def test_output_folders_are_those_the_run_sets(tmp_path):
    from rlgen.lightning_modules import VAE

    assert output_folders(VAE()) == []
    assert output_folders(VAE(predict_dir=str(tmp_path))) == [tmp_path]
