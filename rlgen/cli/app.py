"""rlgen's command line: ``rlgen fit|validate|test|predict -c configs/<algo>/<data>.yaml``.

Any LightningModule or LightningDataModule of the package is accepted by its short class name
(``class_path: VAE``); ``data`` is optional, since RL modules collect their own experience.
Several ``-c`` files compose: an algorithm config first, then overlays such as
``configs/trainer/ddp.yaml`` or ``configs/logger/wandb.yaml``.

Every problem a user can fix (a bad config, missing data, an unknown environment, a corrupt or
mismatched checkpoint, an unwritable log directory) ends in one line ``rlgen: error: ...`` and exit
status 1 (2 for config parse errors); ``RLGEN_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from jsonargparse.typing import PositiveInt
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import WandbLogger

from rlgen._registry import import_submodules
from rlgen.callbacks.faults import FaultGuard
from rlgen.callbacks.progress import default_progress
from rlgen.callbacks.run_dir import RunConfigCallback
from rlgen.checkpoints import AtomicCheckpointIO, read_checkpoint
from rlgen.cli.checks import (
    check_model_class,
    check_plain_hparams,
    default_new_network_args,
    find_best_checkpoint,
    find_last_checkpoint,
)
from rlgen.cli.config import (
    SUBCOMMANDS,
    adapt_to_model,
    best_checkpoint_globs,
    check_trainer_ranges,
    check_writable,
    config_entries,
    config_files,
    default_logger,
    explicit_model_keys,
    follow_default_root_dir,
    log_beside_checkpoint,
    log_roots,
    model_help_hint,
    requested_subcommand,
)
from rlgen.cli.listing import version_line
from rlgen.cli.quiet import quiet_third_party
from rlgen.cli.summary import closing_summary, rebuild_args
from rlgen.cli.user_errors import user_error
from rlgen.compat import CheckpointHparamsHook
from rlgen.errors import RlgenError
from rlgen.lightning_modules.base import default_threads

# Importing every module registers its classes, so configs may say `class_path: VAE`.
import_submodules("rlgen.lightning_modules")
import_submodules("rlgen.datamodules")



class RlgenCLI(CheckpointHparamsHook):
    """LightningCLI with rlgen's defaults and checks.

    Unless the config says otherwise, every run gets a progress bar (plain lines every 30 s when the output
    is not a terminal), a ``last.ckpt`` checkpoint that is always the newest state (configs add a
    ``ModelCheckpoint`` that keeps the best model) and a :class:`FaultGuard` (stop on NaN losses, checkpoint
    on Ctrl-C and SIGTERM). The default TensorBoard logger gives each run its own ``version_N`` directory,
    so two runs never collide. ``--ckpt_path last`` finds the newest ``last.ckpt`` of earlier runs with the
    same logger name. Evaluation runs (validate, test, predict) log inside the run of their checkpoint.
    Each command ends with a summary of what it made and the next command to run.
    """

    _started = 0.0  # time.time() when the subcommand began (before_<subcommand>)

    def __init__(self, *, args: list[str] | None = None, parser_kwargs: dict | None = None, **kwargs: Any) -> None:
        self._requested = requested_subcommand(sys.argv[1:] if args is None else args)
        built = self.subcommands()  # parser_kwargs of a subcommand not built would go to the main parser
        parser_kwargs = {k: v for k, v in (parser_kwargs or {}).items() if k not in SUBCOMMANDS or k in built}
        super().__init__(args=args, parser_kwargs=parser_kwargs, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:
        """LightningCLI's subcommands, but only the one the command line starts with when it names one:
        ``rlgen fit`` builds one parser instead of four, a large part of a short run's start-up.
        ``rlgen --help`` and a misspelt subcommand still see all four."""
        every = LightningCLI.subcommands()
        return {self._requested: every[self._requested]} if self._requested else every

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict, subparser_kwargs: dict) -> None:
        """LightningCLI has no ``--version``."""
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        self.parser.add_argument("--version", action="version", version=version_line())

    def add_arguments_to_parser(self, parser) -> None:
        """Two options LightningCLI lacks: ``--compile`` and ``--threads`` (applied in instantiate_classes)."""
        parser.add_argument("--compile", type=bool, default=False,
                            help="Compile the model with torch.compile (opt-in; pays off on GPUs, a one-off compile "
                                 "time and often slower on CPUs).")
        parser.add_argument("--threads", type=PositiveInt | None, default=None,
                            help="Torch intra-op threads (default: the model's choice, 1 for the small MLPs of "
                                 "CartPole and JumpChain, all cores otherwise; OMP_NUM_THREADS also sets it).")
        parser.add_argument("--trust_checkpoint", type=bool, default=False,
                            help="Load a --ckpt_path that holds Python objects besides tensors and plain data. "
                                 "Unpickling such a file can run any code: only for files from a source you trust.")

    def instantiate_classes(self) -> None:
        """LightningCLI's, plus: W&B gets the whole resolved config at init (and a SLURM-stable run id), and the
        torch threads and ``torch.compile`` are applied to the built model."""
        options = self.config[self.subcommand] if self.subcommand else self.config
        wandb = config_entries(options, "logger", WandbLogger)
        saved = [logger.clone() for logger in wandb]
        try:
            for logger in wandb:
                self._prepare_wandb(logger)
            super().instantiate_classes()
        finally:  # the run's config.yaml keeps the logger as configured, without a copy of the whole config
            for logger, before in zip(wandb, saved, strict=True):
                logger.init_args, logger.dict_kwargs = before.get("init_args"), before.get("dict_kwargs")
        threads = options.get("threads")
        if threads is None and "OMP_NUM_THREADS" not in os.environ:
            threads = default_threads(self.model)
        if threads is not None:
            torch.set_num_threads(threads)
        if options.get("compile"):
            self.model = torch.compile(self.model)

    def parse_arguments(self, parser, args) -> None:
        """LightningCLI's parse, then the checks and settings it has no place for: Trainer option ranges, the
        default logger following ``default_root_dir``, a writable log directory, ``--ckpt_path last``,
        evaluation runs logging beside their checkpoint, and a checkpoint of the configured model class."""
        self._cli_args = [str(a) for a in (sys.argv[1:] if args is None else args)]
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        cfg = self.config[subcommand]
        check_trainer_ranges(cfg)
        follow_default_root_dir(cfg)
        roots = log_roots(cfg)
        if subcommand == "fit":
            for root in roots:
                check_writable(root)
        ckpt_path = cfg.get("ckpt_path")
        if ckpt_path in ("last", "best"):  # the newest run's (Lightning knows them only in the process that trained)
            found = find_last_checkpoint(roots) if ckpt_path == "last" else (
                find_best_checkpoint(roots, best_checkpoint_globs(cfg)))
            cfg.ckpt_path = ckpt_path = str(found)
            verb = "resuming from" if subcommand == "fit" else "using"
            print(f"rlgen: {verb} {ckpt_path}", file=sys.stderr)
        if subcommand != "fit" and ckpt_path and Path(ckpt_path).is_file():
            log_beside_checkpoint(cfg, Path(ckpt_path), subcommand)
        # Checkpoints are data: Lightning's own load is weights_only=True too, unless the user trusts the file
        # (--trust_checkpoint, or Lightning's spelling --weights_only false).
        self._trusted = bool(cfg.get("trust_checkpoint")) or cfg.get("weights_only") is False
        if "weights_only" in cfg:
            cfg.weights_only = not self._trusted
        if ckpt_path and ckpt_path not in ("hpc", "registry") and not ckpt_path.startswith("registry:"):
            model = cfg.get("model")
            class_path = model.get("class_path") if isinstance(model, (dict, Namespace)) else None
            ckpt = read_checkpoint(ckpt_path, trust=self._trusted)
            check_model_class(ckpt, ckpt_path, class_path)
            check_plain_hparams(ckpt, ckpt_path)
            self._ckpt_hparams = ckpt.get("hyper_parameters") or {}

    def trusted_checkpoint_hparams(self) -> dict | None:
        """A trusted checkpoint's hyperparameters, as read in parse_arguments (checked to be plain data there)."""
        return getattr(self, "_ckpt_hparams", None) if getattr(self, "_trusted", False) else None

    def after_checkpoint_hparams(self, before: Namespace, after: Namespace) -> None:
        """LightningCLI writes a checkpoint's hyperparameters over the parsed model arguments; put back
        those the command line names explicitly (``--model.video_dir ...``), so that the command line wins, and
        give network arguments newer than the checkpoint their defaults (not the config's values)."""
        if not isinstance(before, Namespace) or not isinstance(after, Namespace):
            return
        explicit = explicit_model_keys(self._cli_args)
        for key in explicit:
            if key in (before.get("init_args") or {}) and after.get("init_args") is not None:
                after.init_args[key] = before.init_args[key]
            if isinstance(after.get("dict_kwargs"), dict):
                after.dict_kwargs.pop(key, None)
        default_new_network_args(after, getattr(self, "_ckpt_hparams", {}), explicit)

    def before_instantiate_classes(self) -> None:
        """What the model class asks of the trainer (its DDP strategy, checkpoints on metrics it logs)."""
        adapt_to_model(self.config[self.subcommand] if self.subcommand else self.config)

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """LightningCLI's Trainer with rlgen's default callbacks (progress, last.ckpt, FaultGuard) and atomic
        checkpoint writes; evaluation runs write no checkpoints."""
        trainer_cfg = (self.config_init[self.subcommand] if self.subcommand else self.config_init).get("trainer") or {}
        callbacks = list(trainer_cfg.get("callbacks") or [])
        evaluating = self.subcommand not in (None, "fit")
        if evaluating:  # writes no checkpoints (nor warns that their folder changed)
            callbacks = [c for c in callbacks if not isinstance(c, (ModelCheckpoint, EarlyStopping))]
            kwargs["enable_checkpointing"] = False
            # ... so the checkpoint's callback states are left unused on purpose (scoped by run()'s quiet block).
            warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks used")
        defaults = []
        if trainer_cfg.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):
            defaults.append(default_progress())
        checkpoints = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
        if not evaluating and trainer_cfg.get("enable_checkpointing") is not False and not any(
            c.monitor is None and c.save_last for c in checkpoints
        ):
            # A monitored ModelCheckpoint refreshes last.ckpt only when its metric improves (and a second
            # writer would make last-v1.ckpt): an unmonitored one owns last.ckpt, always the newest state.
            for c in checkpoints:
                if c.save_last:
                    print(f"rlgen: last.ckpt is the newest state, written by rlgen's own checkpoint; save_last of "
                          f"ModelCheckpoint(monitor={c.monitor}) is off (it would refresh last.ckpt only when "
                          f"{c.monitor} improves)", file=sys.stderr)
                    c.save_last = False
            defaults.append(ModelCheckpoint(save_last=True, filename="latest-{step}"))
        if not any(isinstance(c, FaultGuard) for c in callbacks):
            defaults.append(FaultGuard())
        kwargs["callbacks"] = callbacks + defaults
        plugins = trainer_cfg.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            kwargs["plugins"] = plugins + [AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    # LightningCLI calls before_<subcommand> and after_<subcommand> around the trainer's method.
    def before_fit(self) -> None:
        self._started = time.time()

    before_validate = before_test = before_fit

    def before_predict(self) -> None:
        self._started = time.time()
        if getattr(self.model.predict_step, "__func__", None) is LightningModule.predict_step:  # not overridden
            name = type(self.model.predict_step.__self__).__name__
            raise RlgenError(f"{name} has no predict step; `rlgen test -c <config> --ckpt_path ...` "
                             "evaluates it (and records videos with --model.video_dir)")

    def after_fit(self) -> None:
        self._finish("fit")

    def after_validate(self) -> None:
        self._finish("validate")

    def after_test(self) -> None:
        self._finish("test")

    def after_predict(self) -> None:
        self._finish("predict")

    def _finish(self, subcommand: str) -> None:
        """Close W&B runs (so that the next run in this process starts afresh) and print the closing summary."""
        if any(isinstance(logger, WandbLogger) for logger in self.trainer.loggers):
            import wandb

            if wandb.run is not None:
                wandb.finish()
        if self.trainer.is_global_zero:
            configs = config_files(self._cli_args)
            model = self.trainer.lightning_module  # the module itself, also when --compile wrapped it
            print(closing_summary(subcommand, self.trainer, model, configs, self._started,
                                  rebuild_args(self._cli_args)), flush=True)

    def _prepare_wandb(self, logger: Namespace) -> None:
        """Just for building the WandbLogger: give W&B the whole resolved config at init (offline runs write it
        only then), and under SLURM a run id derived from the job id, so that a requeued job continues the
        same W&B run. Both are WandbLogger arguments (``id``, and ``config``/``resume`` passed on to wandb.init)."""
        config = yaml.safe_load(self.parser.dump(self.config, skip_unset=False, skip_validation=True))
        extra = dict(logger.get("dict_kwargs") or {})
        extra["config"] = {**config.get(self.subcommand, config), **(extra.get("config") or {})}
        job = os.environ.get("SLURM_JOB_ID")
        init_args = logger.get("init_args") or Namespace()
        if job and not init_args.get("id") and not init_args.get("version"):
            init_args.id = f"slurm-{job}"
            extra.setdefault("resume", "allow")
            logger.init_args = init_args
        logger.dict_kwargs = extra


def skip_nvml_without_gpu_driver() -> None:
    """Let torch ask CUDA, not NVML, whether a GPU exists, on a machine without NVIDIA's driver.

    lightning_fabric sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported, so that ``torch.cuda.is_available()``
    does not initialize CUDA in a process whose DataLoader workers fork. torch does not cache NVML's answer, and
    where the driver is missing every optimizer step pays a failed NVML load: a small fused Adam step took 302 us
    instead of 42 (this 2-core CPU). Without the driver there is no CUDA for a fork to break, so rlgen turns the
    NVML check off there (Linux only, where ``/proc/driver/nvidia`` tells; a GPU machine keeps Lightning's choice).
    """
    if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia"):
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


DESCRIPTION = ("rlgen: classic deep RL and generative models as readable Lightning modules. "
               "`rlgen list` shows every algorithm's configs with their expected results; "
               "`rlgen fit -c <config>` trains one.")


def run(args: list[str] | None = None) -> RlgenCLI:
    """Run the CLI in this process and return it (``cli.trainer``, ``cli.model``) for scripts and tests."""
    cli_args = [str(a) for a in (sys.argv[1:] if args is None else args)]
    no_exit = {"exit_on_error": False}
    threads = torch.get_num_threads()
    skip_nvml_without_gpu_driver()
    try:
        with quiet_third_party():
            return RlgenCLI(
                args=args,
                seed_everything_default=0,
                save_config_callback=RunConfigCallback,
                trainer_defaults={"default_root_dir": "runs", "logger": default_logger(cli_args)},
                parser_kwargs={"description": DESCRIPTION, **no_exit, **{sub: dict(no_exit) for sub in SUBCOMMANDS}},
            )
    except SystemExit as done:
        if done.code == 0 and ("--help" in cli_args or "-h" in cli_args):
            print(model_help_hint(cli_args))
        raise
    except Exception as err:
        message, status = user_error(err, cli_args)
        if message is None or os.environ.get("RLGEN_DEBUG"):
            raise
        if message.startswith(("Problems parsing config", "Unexpected config")):
            message = f"{message} (in {', '.join(config_files(cli_args)) or 'the command line'}; "\
                      "a config must be a YAML mapping such as `model: ...`)"
        print(f"rlgen: error: {message}", file=sys.stderr)
        raise SystemExit(status) from None
    finally:
        torch.set_num_threads(threads)  # a run's thread choice does not leak into the calling process


