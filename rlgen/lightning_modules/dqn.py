"""Deep Q-Network with experience replay and a target network (Mnih et al., 2015)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlgen.envs.options import EnvOptions
from rlgen.errors import RlgenError, check_range
from rlgen.experience.replay import PrioritizedBatch, ReplayBatch
from rlgen.experience.sources import ReplayExperience
from rlgen.lightning_modules.rl_system import RLSystem
from rlgen.nets.rl import QNetwork


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """``start`` at t = 0, moving linearly to ``end`` at t = ``duration``, then constant."""
    if duration <= 0:
        return end
    return start + (end - start) * min(1.0, t / duration)


def td_target(rewards: torch.Tensor, discounts: torch.Tensor, next_q_target: torch.Tensor,
              next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """Y = r + discount * Q_target(s', a*), with ``discount = gamma^n (1 - terminated)``.

    a* = argmax_a Q_target(s', a) (DQN) or argmax_a Q_online(s', a) (Double DQN, pass ``next_q_online``).
    A truncated (time-limit) transition keeps its discount, so the target bootstraps through it.

    Args:
        rewards: ``(B,)`` (n-step discounted) rewards.
        discounts: ``(B,)`` gamma^n, or 0 where the episode terminated.
        next_q_target: ``(B, A)`` target-network values of the next observation.
        next_q_online: ``(B, A)`` online-network values of the next observation (Double DQN) or None.
    """
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values  # (B,)
    else:
        best = next_q_online.argmax(dim=1, keepdim=True)  # (B, 1)
        next_value = next_q_target.gather(1, best).squeeze(1)  # (B,)
    return rewards + discounts * next_value


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, parameter by parameter (tau = 1 copies)."""
    for target_param, online_param in zip(target.parameters(), online.parameters(), strict=True):
        target_param.lerp_(online_param, tau)


class DQN(RLSystem):
    r"""Deep Q-Network (Mnih et al., "Human-level control through deep reinforcement learning",
    Nature 2015), with Double DQN (van Hasselt et al., 2016), dueling heads (Wang et al., 2016) and
    n-step returns as options.

    Loss over a replay batch, with the target network :math:`\bar\theta`:

    .. math::
        Y = r + \gamma^n (1 - \text{terminated}) \max_{a'} Q_{\bar\theta}(s', a'), \qquad
        L(\theta) = \operatorname{Huber}\big(Q_\theta(s, a) - Y\big)

    (Double DQN evaluates :math:`\arg\max_{a'} Q_\theta(s', a')` with :math:`Q_{\bar\theta}`; prioritized
    replay, Schaul et al. 2016, draws transition :math:`i` with probability :math:`\propto |\delta_i|^\alpha`
    and weights its loss by :math:`w_i = (N P(i))^{-\beta} / \max_j w_j`.) Actions are
    epsilon-greedy, epsilon falling linearly over environment steps (NoisyNet exploration, Fortunato et al.
    2018, lives in the network: ``QNetwork(noisy_std=0.5)``, in the paper with epsilon 0). A *phase* is
    ``train_frequency`` env steps, then ``gradient_steps`` gradient steps on fresh replay minibatches; the
    target network is copied every ``target_update_interval`` gradient steps (or moved by Polyak averaging
    with ``tau < 1``).

    One Lightning batch is one phase: ``training_step`` fetches it (the env steps happen then, with the
    current network) and takes all its gradient steps with manual optimization, so Lightning's per-batch
    cost is paid once per phase. ``trainer.global_step`` and ``max_steps`` count gradient steps;
    ``val_check_interval`` and ``log_every_n_steps`` count phases; gradients are clipped with
    ``max_grad_norm`` (``trainer.gradient_clip_val`` does not apply to manual optimization).

    Deviations from the paper:
        * Adam instead of RMSProp (as CleanRL and the RL Zoo do).
        * ``target_update_interval`` counts gradient steps, not environment steps.
        * Episodes end on time limits as *truncated*, and targets bootstrap through them.
    """

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        q_net: QNetwork | None = None,
        env_options: EnvOptions = EnvOptions(),
        num_envs: int = 1,
        lr: float = 1e-4,
        adam_eps: float = 1e-8,
        gamma: float = 0.99,
        batch_size: int = 32,
        buffer_size: int = 100_000,
        save_buffer: bool = False,
        warm_start_steps: int = 1_000,
        train_frequency: int = 4,
        gradient_steps: int = 1,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        eps_decay_steps: int = 10_000,
        target_update_interval: int = 1_000,
        tau: float = 1.0,
        double_dqn: bool = False,
        loss: Literal["huber", "mse"] = "huber",
        max_grad_norm: float | None = 10.0,
        n_step: int = 1,
        per_alpha: float = 0.0,
        per_beta: float = 0.4,
        eval_epsilon: float = 0.0,
        eval_episodes: int = 10,
        test_episodes: int = 20,
        video_dir: str | None = None,
        seed: int | None = None,
    ) -> None:
        """
        Args:
            env_id: Gymnasium id with a discrete action space (``ALE/...`` ids get the Atari stack).
            q_net: the Q-network (None: ``QNetwork()``, MLP 256-256 or Nature CNN); sized in ``setup``.
            env_options: how the environments are built (:class:`rlgen.envs.EnvOptions`: frame_stack, ...).
            num_envs: environments stepped together in this process (per DDP rank).
            lr: Adam learning rate.
            adam_eps: Adam epsilon (1.5e-4 for Atari, as in Rainbow).
            gamma: discount factor.
            batch_size: transitions per gradient step.
            buffer_size: replay capacity in transitions.
            save_buffer: also store the replay buffer in checkpoints (large for Atari).
            warm_start_steps: random-policy env steps that fill the buffer before learning starts.
            train_frequency: env steps (over all envs) collected between training phases.
            gradient_steps: gradient steps per training phase (``train_frequency / gradient_steps`` env steps each).
            eps_start: exploration epsilon at env step 0.
            eps_end: final exploration epsilon.
            eps_decay_steps: env steps over which epsilon falls linearly from ``eps_start`` to ``eps_end``.
            target_update_interval: gradient steps between target-network updates.
            tau: target update rate: 1 copies the online net, < 1 is Polyak averaging.
            double_dqn: pick next actions with the online net, evaluate them with the target net.
            loss: TD loss, ``huber`` (smooth L1) or ``mse``.
            max_grad_norm: clip the gradient's global L2 norm to this (null: no clipping). DQN clips
                itself (manual optimization), so ``trainer.gradient_clip_val`` is not available.
            n_step: n-step returns, computed by the replay buffer.
            per_alpha: prioritized replay (Schaul et al., 2016): draw transitions in proportion to
                ``|TD error|^per_alpha``; 0 is uniform replay.
            per_beta: importance-sampling exponent at the start, annealed linearly to 1 over ``max_steps``.
            eval_epsilon: epsilon of the evaluation policy (0 is greedy; 0.05 is usual on Atari).
            eval_episodes: evaluation episodes per validation (``val/episodic_return`` is their mean).
            test_episodes: evaluation episodes of ``rlgen test`` (``test/episodic_return``).
            video_dir: record the first evaluation episode of each validation/test here (and to the logger).
            seed: environment seed; None uses the run's ``seed_everything``.
        """
        super().__init__(env_id, env_options, num_envs, eval_episodes, test_episodes, video_dir, seed)
        check_range(">= 1", batch_size=batch_size, buffer_size=buffer_size, train_frequency=train_frequency,
                    gradient_steps=gradient_steps, target_update_interval=target_update_interval, n_step=n_step)
        check_range("> 0", lr=lr, max_grad_norm=max_grad_norm)  # max_grad_norm None: no clipping
        check_range("in [0, 1]", gamma=gamma, eps_start=eps_start, eps_end=eps_end, eval_epsilon=eval_epsilon,
                    per_alpha=per_alpha, per_beta=per_beta)
        check_range("in (0, 1]", tau=tau)  # 1: hard copies; below 1: Polyak averaging
        check_range(">= 0", eps_decay_steps=eps_decay_steps)
        if buffer_size < batch_size:
            raise RlgenError(f"model.buffer_size must be >= model.batch_size (the buffer holds at least one batch), "
                             f"got {buffer_size} < {batch_size}")
        if warm_start_steps < batch_size:
            raise RlgenError(f"model.warm_start_steps must be >= model.batch_size (the first batch needs that many "
                             f"transitions), got {warm_start_steps} < {batch_size}")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.automatic_optimization = False  # all of a phase's gradient steps happen in one training_step
        self.q_net = q_net if q_net is not None else QNetwork()
        self.target_net: QNetwork | None = None
        self.n_actions = 0
        self.obs_space: Any = None  # read from a throw-away env in setup
        self.buffer: Any = None
        self.source: ReplayExperience | None = None
        self._rng = np.random.default_rng()  # acting while training (seeded in on_fit_start, checkpointed)
        self._eval_rng = np.random.default_rng(0)  # eval_epsilon, apart: evaluating does not change training

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy actions ``(B,)`` for observations ``(B, *obs_shape)``."""
        return self.q_net(obs).argmax(dim=1)

    def training_step(self, dataloader_iter: Iterator) -> None:
        """One collection phase: fetch its batch (the env steps happen now, with the current network), then
        one gradient step on each of its ``gradient_steps`` minibatches.

        Lightning's ``dataloader_iter`` signature lets the phase be collected here: with a plain ``batch``
        argument Lightning would prefetch the next phase, collected with the previous weights."""
        # phase: ReplayBatch(obs (G, B, *obs), actions (G, B), rewards (G, B), next_obs (G, B, *obs), discounts (G, B))
        phase, batch_idx, _ = next(dataloader_iter)
        phase = self.trainer.strategy.batch_to_device(phase)
        opt = self.optimizers()
        losses, q_means = [], []
        for i in range(phase.actions.shape[0]):
            if 0 < self.trainer.max_steps <= self.global_step:
                break  # the budget ends inside this phase
            loss, q = self._td_loss(type(phase)(*(field[i] for field in phase)))
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.hparams.max_grad_norm is not None:
                self.clip_gradients(opt, gradient_clip_val=self.hparams.max_grad_norm, gradient_clip_algorithm="norm")
            opt.step()  # global_step + 1
            self._update_target()
            losses.append(loss.detach())
            q_means.append(q.detach().mean())
        if losses and self._is_logging_step(batch_idx):
            self._log_rollout(**{"train/loss": torch.stack(losses).mean().item(),
                                 "train/q_mean": torch.stack(q_means).mean().item(), "rollout/epsilon": self.epsilon})

    def _td_loss(self, batch: ReplayBatch | PrioritizedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The TD loss of one minibatch and the online Q(s, a) values ``(B,)``.

        A prioritized batch weights each transition's loss by its importance weight, and the new
        ``|TD error|`` become the transitions' priorities."""
        losses, errors, q = self._transition_losses(batch)
        if not isinstance(batch, PrioritizedBatch):
            return losses.mean(), q
        self.buffer.update_priorities(batch.indices, errors)
        self.buffer.beta = linear_schedule(self.hparams.per_beta, 1.0, self.trainer.max_steps, self.global_step)
        return (batch.weights * losses).mean(), q

    def _transition_losses(self, batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each transition's loss, its new priority (before ``|.|^alpha``: the TD error) and Q(s, a), all ``(B,)``."""
        q = self.q_net(batch.obs).gather(1, batch.actions.long().view(-1, 1)).squeeze(1)  # (B,)
        with torch.no_grad():
            next_q_online = self.q_net(batch.next_obs) if self.hparams.double_dqn else None
            target = td_target(batch.rewards.float(), batch.discounts.float(), self.target_net(batch.next_obs),
                               next_q_online)  # (B,)
        loss_fn = F.smooth_l1_loss if self.hparams.loss == "huber" else F.mse_loss
        return loss_fn(q, target, reduction="none"), q.detach() - target, q

    def _update_target(self) -> None:
        """Polyak step (tau < 1) after every gradient step, or a copy every ``target_update_interval`` of them."""
        tau = self.hparams.tau
        if tau < 1.0 or self.global_step % self.hparams.target_update_interval == 0:
            polyak_update(self.target_net, self.q_net, tau)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The fused kernel updates all parameters at once: DQN takes thousands of small steps, where
        # the default per-tensor Adam costs about as much as the network itself (bench/rl_throughput.py).
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(self.q_net.parameters(), lr=self.hparams.lr, eps=self.hparams.adam_eps, fused=fused)

    # ------------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        if self.target_net is not None:
            return
        from rlgen.envs import check_discrete_actions

        obs_space, action_space = self._env_spaces()
        self.n_actions = check_discrete_actions(action_space, "DQN")
        self.obs_space = obs_space
        self.q_net.build(obs_space.shape, self.n_actions)
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)

    def on_fit_start(self) -> None:
        from rlgen.experience import PrioritizedReplayBuffer, ReplayBuffer

        hp = self.hparams
        self._rng = np.random.default_rng(self.env_seed)
        self.envs = self._make_train_envs()
        shape = self.obs_space.shape
        kwargs = dict(obs_dtype=self.obs_space.dtype, num_envs=hp.num_envs, n_step=hp.n_step, gamma=hp.gamma,
                      frame_stack=shape[0] if len(shape) == 3 else 1,  # pixels: store each frame once
                      seed=self.env_seed)
        if hp.per_alpha > 0:
            self.buffer = PrioritizedReplayBuffer(hp.buffer_size, shape, alpha=hp.per_alpha, beta=hp.per_beta, **kwargs)
        else:
            self.buffer = ReplayBuffer(hp.buffer_size, shape, **kwargs)
        self.source = ReplayExperience(self.envs, self.buffer, self._act, hp.batch_size, hp.train_frequency,
                                       hp.gradient_steps, seed=self.env_seed, stats=self.rollout, per_phase=True)
        restored = self._restored_rl_state or {}
        if "replay_buffer" in restored:
            self.buffer.load_state_dict(restored["replay_buffer"])
        if "rng" in restored:
            self._rng.bit_generator.state = restored["rng"]
        # Warm-up: random actions until the buffer holds warm_start_steps transitions.
        self.source.collect(self._random_act, max(0, hp.warm_start_steps - len(self.buffer)))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        if not any(key.startswith("target_net.") for key in state):  # an exported agent: the online net alone
            online = {k[len("q_net."):]: v for k, v in state.items() if k.startswith("q_net.")}
            state.update({f"target_net.{k}": v for k, v in online.items()})

    # ------------------------------------------------------------------------------- helpers
    @property
    def epsilon(self) -> float:
        """Exploration epsilon at the current environment step."""
        hp = self.hparams
        return linear_schedule(hp.eps_start, hp.eps_end, hp.eps_decay_steps, self.rollout.env_steps)

    def _act(self, obs: np.ndarray) -> np.ndarray:
        """Epsilon-greedy actions ``(N,)`` for observations ``(N, *obs_shape)``."""
        actions = self._random_act(obs)
        explore = self._rng.random(len(obs)) < self.epsilon
        if not explore.all():  # the network is only run when some env acts greedily
            with torch.inference_mode():
                greedy = self.q_net(torch.as_tensor(obs, device=self.device)).argmax(dim=1).cpu().numpy()
            actions = np.where(explore, actions, greedy)
        return actions

    def _random_act(self, obs: np.ndarray) -> np.ndarray:
        return self._rng.integers(self.n_actions, size=len(obs))

    def _eval_action(self, obs: np.ndarray) -> int:
        if self.hparams.eval_epsilon > 0 and self._eval_rng.random() < self.hparams.eval_epsilon:
            return int(self._eval_rng.integers(self.n_actions))
        return int(self(torch.as_tensor(obs, device=self.device).unsqueeze(0))[0])

    def _extra_rl_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": self._rng.bit_generator.state}
        if self.hparams.save_buffer and self.buffer is not None:
            state["replay_buffer"] = self.buffer.state_dict()
        return state
