"""Plumbing shared by the RL systems (DQN, REINFORCE): environments, greedy evaluation, videos,
rollout logging and the RL state in checkpoints. The algorithms themselves live in ``dqn.py`` and
``reinforce.py``.

Evaluation is one episode per ``validation_step`` / ``test_step``: the val/test dataloaders yield
episode indices ``0..N-1`` and each step plays one episode on a separate evaluation env, so Lightning
averages ``val/episodic_return`` over the N episodes (and shards them across DDP ranks).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.error import DependencyNotInstalled
from torch.utils.data import DataLoader

from rlgen.envs.make_env import is_mujoco, offscreen_rendering
from rlgen.envs.options import EnvOptions, as_env_options
from rlgen.errors import RlgenError, check_range
from rlgen.experience import RolloutStats, episode_indices, experience_loader
from rlgen.lightning_modules.base import RlgenModule
from rlgen.media.video import log_video, save_video
from rlgen.nets.rl import GaussianPolicy

_RANK_SEED_STRIDE = 10_000  # rank r's envs are seeded seed + r * stride (+ i for sub-env i)
_EVAL_SEED_OFFSET = 5_000  # the evaluation env never replays a training env's seeds


class RLSystem(RlgenModule):
    """Base of the RL systems: environments, evaluation, videos, rollout logging. Subclasses pass the
    environment arguments to ``super().__init__``, save their hyperparameters (``ignore=RUN_TIME_ARGS``) and
    implement ``_eval_action(obs)`` (the action for one observation during evaluation).

    Arguments are read one way, as in every rlgen module: saved hyperparameters from ``self.hparams``
    (``env_id``, ``num_envs``, ``seed`` here), the run-time arguments (not saved) and built objects as
    attributes: ``eval_episodes``, ``test_episodes``, ``video_dir``, and ``env_options``, the
    :class:`~rlgen.envs.EnvOptions` built from the hyperparameter (which may be a dict, see ``as_env_options``).
    """

    # Arguments chosen afresh for each run, never restored from a checkpoint (RlgenModule declares the contract):
    # `rlgen test --ckpt_path ... --model.video_dir videos/` must record.
    RUN_TIME_ARGS = ("video_dir", "eval_episodes", "test_episodes")
    OUTPUT_ARGS = ("video_dir",)

    def __init__(self, env_id: str, env_options: EnvOptions | dict[str, Any] | None, num_envs: int, eval_episodes: int,
                 test_episodes: int, video_dir: str | None, seed: int | None) -> None:
        super().__init__()
        check_range(">= 1", num_envs=num_envs, eval_episodes=eval_episodes, test_episodes=test_episodes)
        # The one conversion of env_options: a dict (a user's, or a checkpoint's hyperparameters) becomes the dataclass.
        self.env_options: EnvOptions = as_env_options(env_options)
        self.eval_episodes, self.test_episodes, self.video_dir = eval_episodes, test_episodes, video_dir
        self.rollout = RolloutStats()
        self._eval_env: Any = None
        self.eval_returns: list[float] = []  # the episode returns of the latest validation or test
        self._restored_rl_state: dict[str, Any] | None = None
        self._checkpoint_step = 0  # global_step of the loaded checkpoint: names the videos of `rlgen test`
        self.envs: Any = None  # the training environments (a vector env), built when fit starts

    # ----------------------------------------------------------------------------- evaluation
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate_step("val", batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate_step("test", batch_idx)

    def on_validation_epoch_start(self) -> None:
        self.eval_returns = []

    def on_test_epoch_start(self) -> None:
        self.eval_returns = []

    def train_dataloader(self) -> DataLoader:
        assert self.source is not None, "the experience source is built in on_fit_start"
        return experience_loader(self.source)

    def val_dataloader(self) -> DataLoader:
        return episode_indices(self.eval_episodes)

    def test_dataloader(self) -> DataLoader:
        return episode_indices(self.test_episodes)

    def on_train_start(self) -> None:
        self.rollout.start_clock()  # rollout/sps leaves out the warm-up

    # --------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rl_state"] = {"rollout": self.rollout.state_dict(), **self._extra_rl_state()}
        hparams = checkpoint.get("hyper_parameters")
        if hparams is not None:
            # A module built in Python saves what a config-built one does, so that `rlgen test --ckpt_path` rebuilds
            # it: env_options as plain data (LightningCLI reads hyperparameters with weights_only=True, which
            # refuses a pickled dataclass) and the class path LightningCLI looks for.
            if isinstance(hparams.get("env_options"), EnvOptions):
                hparams["env_options"] = asdict(hparams["env_options"])
            hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Applied in on_fit_start, once the environments and the buffer exist.
        self._checkpoint_step = int(checkpoint.get("global_step", 0))
        self._restored_rl_state = checkpoint.get("rl_state")
        if self._restored_rl_state is not None:
            self.rollout.load_state_dict(self._restored_rl_state["rollout"])

    def teardown(self, stage: str) -> None:
        for env in (getattr(self, "envs", None), self._eval_env):
            if env is not None:
                env.close()
        self.envs = self._eval_env = None

    # ------------------------------------------------------------------------------- helpers
    @property
    def default_threads(self) -> int | None:
        """Torch intra-op threads that fit the network (``rlgen --threads N`` overrides): one for the small
        MLPs of vector observations, whose matrices are too small to split (more threads only fight over
        shared cores: ``bench/contention.py``); None (all cores) for the conv nets on Atari pixels."""
        from rlgen.envs.make_env import looks_atari

        return None if looks_atari(self.hparams.env_id) else 1

    @property
    def env_seed(self) -> int:
        """Seed of this rank's environments: ``seed`` (or the run's ``seed_everything``) + rank offset."""
        seed = self.hparams.seed
        base = seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        return base + _RANK_SEED_STRIDE * self.global_rank

    def _env_spaces(self) -> tuple[Any, Any]:
        """Observation and action spaces, read from one throw-away environment."""
        from rlgen.envs import make_env

        env = make_env(self.hparams.env_id, self.env_options, seed=self.env_seed)()
        spaces = env.observation_space, env.action_space
        env.close()
        return spaces

    @property
    def continuous(self) -> bool:
        """True when the agent acts with a Gaussian policy (``self.policy``, REINFORCE and PPO) over Box actions."""
        return isinstance(getattr(self, "policy", None), GaussianPolicy)

    def _make_train_envs(self) -> Any:
        from rlgen.envs import make_vector_env

        envs = make_vector_env(self.hparams.env_id, self.hparams.num_envs, self.env_options, seed=self.env_seed,
                               num_threads=torch.get_num_threads())
        if self.continuous:  # the envs step clip(a, low, high); the batch keeps the sample a for log pi(a|s)
            from gymnasium.wrappers.vector import ClipAction

            envs = ClipAction(envs)
        return envs

    def _make_eval_env(self) -> Any:
        """One env for evaluation (``make_eval_env``): whole episodes (Atari: whole games), unclipped rewards."""
        from rlgen.envs import make_eval_env

        render_mode = "rgb_array" if self.video_dir is not None else None  # video frames come from env.render()
        return make_eval_env(self.hparams.env_id, self.env_options, seed=self.env_seed + _EVAL_SEED_OFFSET,
                             render_mode=render_mode)

    def _evaluate_step(self, stage: str, episode: int) -> None:
        if self._eval_env is None:
            self._eval_env = self._make_eval_env()
            self._eval_env.reset(seed=self.env_seed + _EVAL_SEED_OFFSET)
        record = self.video_dir is not None and episode == 0
        episodic_return, length, frames = self._play_episode(self._eval_env, record)
        self.eval_returns.append(episodic_return)
        self.log(f"{stage}/episodic_return", episodic_return, on_epoch=True, batch_size=1, sync_dist=True,
                 prog_bar=True)
        self.log(f"{stage}/episode_length", float(length), on_epoch=True, batch_size=1, sync_dist=True)
        if record and frames and self.trainer.is_global_zero:
            step = max(self.global_step, self._checkpoint_step)  # test/validate runs start at global_step 0
            path = Path(self.video_dir) / f"{stage}_step{step:08d}.mp4"
            log_video(self.trainer, f"{stage}/video", frames, save_video(frames, path))

    @torch.no_grad()
    def _play_episode(self, env: Any, record: bool) -> tuple[float, int, list[np.ndarray]]:
        """Play one episode with ``_eval_action``: (return, length, rgb frames if ``record``)."""
        obs, _ = env.reset()
        frames = [self._first_frame(env)] if record else []
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(self._eval_action(obs))
            total, length, done = total + float(reward), length + 1, terminated or truncated
            if record:
                frames.append(env.render())
        return total, length, frames

    def _first_frame(self, env: Any) -> np.ndarray:
        offscreen_rendering()
        try:
            return env.render()
        except DependencyNotInstalled as err:  # CartPole & co. draw with pygame
            raise RlgenError(f"recording videos of {self.hparams.env_id} needs its renderer: {err}") from None
        except Exception as err:  # MuJoCo draws with OpenGL: EGL or OSMesa without a display
            if not is_mujoco(self.hparams.env_id):
                raise
            raise RlgenError(
                f"recording videos of {self.hparams.env_id} needs MuJoCo's headless OpenGL, and MUJOCO_GL="
                f"{os.environ.get('MUJOCO_GL')} failed here ({type(err).__name__}); install EGL or OSMesa "
                "(apt install libegl1 or libosmesa6) and set MUJOCO_GL=egl or osmesa, or train without video_dir"
            ) from None

    def _eval_action(self, obs: np.ndarray) -> int:
        raise NotImplementedError

    def _is_logging_step(self, batch_idx: int) -> bool:
        """True on the batches whose metrics the logger writes (skip ``.item()`` syncs on the others)."""
        return (batch_idx + 1) % self.trainer.log_every_n_steps == 0 or bool(self.trainer.fast_dev_run)

    def _log_rollout(self, **extra: float) -> None:
        """Log ``rollout/*`` and ``extra`` (call on logging steps)."""
        self.log_dict({**self.rollout.pop(), **extra}, on_step=True, on_epoch=False, batch_size=1)

    def _extra_rl_state(self) -> dict[str, Any]:
        return {}
