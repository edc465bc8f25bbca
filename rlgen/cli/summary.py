"""What a run made, said at its end: the closing summary that ``rlgen fit|validate|test|predict`` prints.

    rlgen: fit finished after 12,800 steps in 1 min 35 s: val/episodic_return = 500.0 > 475.0 (EarlyStopping)
      run directory    runs/dqn_cartpole/version_3
      last checkpoint  runs/dqn_cartpole/version_3/checkpoints/last.ckpt
      best checkpoint  runs/dqn_cartpole/version_3/checkpoints/best-step=12800.ckpt (val/episodic_return 500.0)
      final            val/episodic_return 500.0
      next             rlgen test -c configs/dqn/cartpole.yaml --ckpt_path last
                       rlgen test -c configs/dqn/cartpole.yaml --ckpt_path best   # the best checkpoint above
                       tensorboard --logdir runs/dqn_cartpole
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, Timer

from rlgen.callbacks.progress import format_duration
from rlgen.callbacks.rl import EnvStepBudget
from rlgen.lightning_modules.base import declared, output_folders
from rlgen.paths import run_directory

_MAX_FILES = 4  # files listed by name; the rest are counted
_MEDIA = {".png", ".jpg", ".jpeg", ".gif", ".mp4"}
_REBUILD = ("--model", "--model.class_path", "--data", "--trainer.default_root_dir")  # and --data.*


def closing_summary(subcommand: str, trainer: Trainer, model: LightningModule, configs: list[str],
                    started: float, rebuild: Sequence[str] = ()) -> str:
    """The lines printed when ``subcommand`` has finished (``started`` is its ``time.time()`` at the start);
    the next commands repeat ``configs`` and the arguments in ``rebuild`` (:func:`rebuild_args`)."""
    run_dir = run_directory(trainer)
    head = f"rlgen: {subcommand} finished"
    if subcommand == "fit":
        head += f" after {trainer.global_step:,} steps"
    head += f" in {format_duration(time.time() - started)}"
    reason = _stop_reason(trainer) if subcommand == "fit" else None
    if trainer.interrupted:
        head += " (interrupted; last.ckpt holds the state at the interruption)"
    elif reason:
        head += ": " + reason
    rows: list[tuple[str, str]] = [("run directory", str(run_dir))]
    checkpoints = trainer.checkpoint_callbacks if subcommand == "fit" else []
    last = next((c.last_model_path for c in checkpoints if getattr(c, "last_model_path", "")), "")
    if last:
        rows.append(("last checkpoint", last))
    best = False
    for c in checkpoints:
        if isinstance(c, ModelCheckpoint) and c.monitor and c.best_model_path:
            score = f" ({c.monitor} {float(c.best_model_score):.4g})" if c.best_model_score is not None else ""
            rows.append(("best checkpoint", c.best_model_path + score))
            best = True
    stage = {"fit": "val/", "validate": "val/", "test": "test/"}.get(subcommand)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
               if stage and k.startswith(stage) and v.numel() == 1}
    if metrics:
        rows.append(("final", ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))))
    files = _files_since(started, [run_dir, *output_folders(model)])
    if files:
        shown = ", ".join(str(f) for f in files[:_MAX_FILES])
        more = f" and {len(files) - _MAX_FILES} more" if len(files) > _MAX_FILES else ""
        rows.append(("files written", shown + more))
    for i, command in enumerate(_next_commands(subcommand, model, configs, rebuild, run_dir, bool(last), best)):
        rows.append(("next" if i == 0 else "", command))
    return "\n".join([head, *(f"  {label:<16} {value}" for label, value in rows)])


def _stop_reason(trainer: Trainer) -> str | None:
    """Why fit stopped before its max_steps, if a callback stopped it: EarlyStopping's message, the env-step
    budget (EnvStepBudget) or the time limit (Timer, ``trainer.max_time``)."""
    for c in trainer.callbacks:
        if isinstance(c, EarlyStopping) and getattr(c, "stopping_reason_message", None):
            return c.stopping_reason_message.replace(" Signaling Trainer to stop.", "").rstrip(".") + " (EarlyStopping)"
        if isinstance(c, EnvStepBudget) and c.stopped_at is not None:
            return f"{c.stopped_at:,} env steps spent the budget of {c.max_env_steps:,} (EnvStepBudget)"
        remaining = c.time_remaining("train") if isinstance(c, Timer) else None
        if remaining is not None and remaining <= 0:
            limit = c.time_elapsed("train") + remaining  # the Timer's duration (trainer.max_time)
            return f"max_time of {format_duration(limit)} reached (Timer)"
    return None


def rebuild_args(args: list[str]) -> list[str]:
    """The arguments of a command line that the next command needs again, shell-quoted: the model's class
    (``--model=QRDQN``; a checkpoint restores the class's arguments, not the class), the data (``--data.*``) and
    the folder the run lives in (``--trainer.default_root_dir``), each ``--key=value`` or ``--key value``."""
    kept = []
    for i, arg in enumerate(args):
        key = arg.split("=", 1)[0]
        if key in _REBUILD or key.startswith("--data."):
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            kept.append(f"{key}={shlex.quote(value)}")
    return kept


def _next_commands(subcommand: str, model: LightningModule, configs: list[str], rebuild: Sequence[str], run_dir: Path,
                   trained: bool, best: bool) -> list[str]:
    config = " ".join([*([f"-c {shlex.quote(c)}" for c in configs] or ["-c <config>"]), *rebuild])
    can_predict = type(model).predict_step is not LightningModule.predict_step
    commands = []
    if subcommand == "fit" and trained:
        commands.append(f"rlgen test {config} --ckpt_path last")
        if best:
            commands.append(f"rlgen test {config} --ckpt_path best   # the best checkpoint above")
        if can_predict:
            commands.append(f"rlgen predict {config} --ckpt_path last")
        elif "video_dir" in declared(type(model)).OUTPUT_ARGS:
            commands.append(f"rlgen test {config} --ckpt_path last --model.video_dir videos/   # watch the agent")
    if subcommand != "predict":
        commands.append(f"tensorboard --logdir {run_dir.parent}")
    return commands


def _files_since(started: float, folders: Iterable[Path]) -> list[Path]:
    """Images and videos below ``folders`` modified since ``started``, oldest first."""
    found = {p for folder in folders if folder.is_dir() for p in folder.rglob("*")
             if p.suffix.lower() in _MEDIA and p.is_file() and p.stat().st_mtime >= started - 1}
    return sorted(found, key=lambda p: (p.stat().st_mtime, str(p)))
