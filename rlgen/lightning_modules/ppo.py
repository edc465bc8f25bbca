"""PPO: proximal policy optimization with GAE (Schulman et al. 2017), and A2C as one of its settings."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from rlgen.envs.options import EnvOptions
from rlgen.errors import RlgenError, check_range
from rlgen.experience.normalize import RewardScaler, RunningMeanStd
from rlgen.experience.rollout import PolicyStep, RolloutBatch, RolloutExperience
from rlgen.lightning_modules.rl_system import RLSystem
from rlgen.nets.rl import CategoricalPolicy, GaussianPolicy, Policy


def clipped_surrogate_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor,
                           clip_range: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(policy_loss, approx_kl, clip_fraction)``: PPO's clipped surrogate, as a loss to minimize,
    ``-mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)`` with ``rho_t = pi(a_t|s_t) / pi_old(a_t|s_t)``.

    ``approx_kl`` is the estimator ``mean(rho - 1 - log rho)`` of KL(pi_old || pi) (Schulman's k3, as CleanRL
    logs it); ``clip_fraction`` the share of steps with ``|rho - 1| > eps``. Neither carries a gradient.

    Args:
        log_probs: ``(B,)`` log pi(a_t | s_t) under the current policy.
        old_log_probs: ``(B,)`` log pi_old(a_t | s_t), from the policy that collected the rollout.
        advantages: ``(B,)`` A_t (already normalized, if at all).
        clip_range: eps; None: no clipping, the plain policy gradient surrogate ``-mean rho_t A_t`` (A2C).
    """
    log_ratio = log_probs - old_log_probs.detach()  # (B,)
    ratio = log_ratio.exp()
    advantages = advantages.detach()
    surrogate = ratio * advantages
    if clip_range is not None:
        surrogate = torch.min(surrogate, ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages)
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean() if clip_range is not None else \
            torch.zeros((), device=ratio.device)
    return -surrogate.mean(), approx_kl, clip_fraction


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip_range: float | None) -> torch.Tensor:
    """``1/2 mean_t max((V(s_t) - R_t)^2, (V_old(s_t) + clip(V(s_t) - V_old(s_t), -eps, eps) - R_t)^2)``, the
    value loss of the PPO implementations (OpenAI baselines, CleanRL); ``clip_range`` None: ``1/2 mean (V - R)^2``.

    Args:
        values: ``(B,)`` V(s_t) of the current network.
        old_values: ``(B,)`` V_old(s_t) when the rollout was collected.
        returns: ``(B,)`` the targets R_t = A_t + V_old(s_t).
        clip_range: eps, how far V may move from V_old before the loss ignores the move; None: no clipping.
    """
    unclipped = (values - returns).pow(2)  # (B,)
    if clip_range is None:
        return 0.5 * unclipped.mean()
    clipped = (old_values + (values - old_values).clamp(-clip_range, clip_range) - returns).pow(2)
    return 0.5 * torch.max(unclipped, clipped).mean()


class PPO(RLSystem):
    r"""Proximal Policy Optimization (Schulman et al., "Proximal Policy Optimization Algorithms", 2017) with
    generalized advantage estimation (Schulman et al., "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", ICLR 2016), for Discrete and bounded Box actions.

    Each update collects a rollout of ``num_steps`` steps of each of the ``num_envs`` environments with
    :math:`\pi_{\theta_\text{old}}`, computes the advantages, then takes ``update_epochs`` passes over it in
    ``num_minibatches`` shuffled minibatches, each one gradient step on

    .. math::
        \rho_t = \frac{\pi_\theta(a_t|s_t)}{\pi_{\theta_\text{old}}(a_t|s_t)}, \qquad
        L^{CLIP}(\theta) = -\hat{\mathbb{E}}_t\big[\min\big(\rho_t \hat A_t,\;
                           \mathrm{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon)\, \hat A_t\big)\big]

    .. math::
        L(\theta) = L^{CLIP}(\theta) + c_v L^{V}(\theta) - \beta\, \hat{\mathbb{E}}_t[H(\pi_\theta(\cdot|s_t))]

    with :math:`L^V` the (optionally clipped) squared error of :math:`V_\theta(s_t)` against
    :math:`R_t = \hat A_t + V_{\theta_\text{old}}(s_t)` (see :func:`value_loss`), and the GAE(:math:`\lambda`)
    advantages (:func:`rlgen.experience.rollout.gae`):

    .. math::
        \delta_t = r_t + \gamma (1 - \text{terminated}_t) V(s_{t+1}) - V(s_t), \qquad
        \hat A_t = \sum_{l \ge 0} (\gamma\lambda)^l \delta_{t+l} \;\text{(within the episode)}

    A time-limit truncation is not a terminal: the advantage bootstraps from the value of the real final
    observation. With ``recompute_advantages``, every epoch after the first recomputes :math:`V(s_t)`,
    :math:`\hat A_t` and :math:`R_t` with the value network as it is then (Andrychowicz et al. 2021, Sec. 3.5).
    :math:`\hat A_t` is standardized within each minibatch (``normalize_advantages``), the global
    gradient norm clipped to ``max_grad_norm``, the learning rate annealed linearly to 0 over ``max_steps``
    (``anneal_lr``). The policy network (:class:`~rlgen.nets.rl.CategoricalPolicy` or
    :class:`~rlgen.nets.rl.GaussianPolicy`, with a separate value network) returns a ``torch.distributions``
    object, so the loss is the same for both kinds of actions. Gaussian samples are clipped into the action
    bounds by the environment wrapper; :math:`\log \pi` is that of the unclipped sample (as CleanRL and SB3).

    **A2C** (Mnih et al. 2016, synchronous) is the setting ``update_epochs: 1, num_minibatches: 1,
    clip_range: null, clip_value_loss: false, normalize_advantages: false`` (Huang et al. 2022, "A2C is a
    special case of PPO"): one gradient step on the whole rollout at :math:`\theta = \theta_\text{old}`, where
    :math:`\nabla \rho_t = \nabla \log \pi_\theta(a_t|s_t)`, the advantage actor-critic gradient; the papers'
    RMSprop is ``optimizer: rmsprop``. See ``configs/a2c/``.

    Observation normalization (``normalize_obs``: running mean and std, clipped to +-10) and reward scaling
    (``normalize_reward``: rewards divided by the running std of the discounted return) keep their statistics
    in submodules of this module (:mod:`rlgen.experience.normalize`): they are saved in the checkpoint, updated
    only by the training rollouts, and used frozen by validation, ``rlgen test`` and videos. Under DDP each rank
    steps its own environments; at the first minibatch of each rollout (and at the end) every rank's statistics
    become those of all ranks' rollouts, so the ranks normalize alike and rank 0's checkpoint holds them all.

    Steps: ``trainer.global_step`` and ``max_steps`` count minibatch gradient steps, ``update_epochs *
    num_minibatches`` per rollout of ``num_envs * num_steps`` env steps (``rollout/env_steps`` counts the env
    steps; an env step budget is ``EnvStepBudget``); ``val_check_interval`` and ``log_every_n_steps`` count
    gradient steps.

    Deviations from the paper:
        * The implementation details of CleanRL's ``ppo.py`` / ``ppo_continuous_action.py`` rather than the
          paper's: separate policy and value networks with orthogonal initialization (``orthogonal_init`` of the
          policy), Adam with eps 1e-5, advantages normalized per minibatch, clipped value loss, global gradient
          clipping, a state-independent log-std (Huang et al. 2022, "The 37 implementation details of PPO").
        * The learning rate anneals per gradient step, not per rollout.
        * Lightning fetches one batch ahead, so the next rollout is collected just before the last minibatch step
          of the current update: it comes from a policy one minibatch step older than the newest. The ratio uses
          the log-probabilities stored at collection, so the objective is exact for the policy that acted. For
          the same reason ``recompute_advantages`` uses the value network of one minibatch step before the epoch's end.
        * The reset step of Gymnasium's next-step autoreset is left out of the minibatches, so a rollout holds
          slightly fewer than ``num_envs * num_steps`` transitions after episodes end.
    """

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        policy: Policy | None = None,
        env_options: EnvOptions = EnvOptions(),
        num_envs: int = 4,
        num_steps: int = 128,
        update_epochs: int = 4,
        num_minibatches: int = 4,
        lr: float = 2.5e-4,
        anneal_lr: bool = True,
        optimizer: Literal["adam", "rmsprop"] = "adam",
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | None = 0.2,
        clip_value_loss: bool = True,
        value_coef: float = 0.5,
        entropy_coef: float = 0.01,
        max_grad_norm: float | None = 0.5,
        normalize_advantages: bool = True,
        recompute_advantages: bool = False,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        eval_episodes: int = 10,
        test_episodes: int = 20,
        video_dir: str | None = None,
        seed: int | None = None,
    ) -> None:
        """
        Args:
            env_id: Gymnasium id with flat observations and Discrete or bounded Box actions.
            policy: ``CategoricalPolicy`` (Discrete) or ``GaussianPolicy`` (Box), built with a value network; None:
                the one the env's action space needs, with orthogonal initialization. Sized for the env in ``setup``.
            env_options: how the environments are built (:class:`rlgen.envs.EnvOptions`).
            num_envs: environments stepped together in this process (per DDP rank).
            num_steps: steps of each environment per rollout.
            update_epochs: passes over each rollout (A2C: 1).
            num_minibatches: minibatches per pass (A2C: 1, the whole rollout).
            lr: learning rate.
            anneal_lr: decay the learning rate linearly to 0 over ``trainer.max_steps``.
            optimizer: ``adam`` (eps 1e-5, PPO) or ``rmsprop`` (alpha 0.99, eps 1e-5, A2C).
            gamma: discount factor.
            gae_lambda: GAE's lambda in [0, 1].
            clip_range: PPO's epsilon (> 0); null: no clipping (A2C).
            clip_value_loss: clip the value loss with ``clip_range`` as well.
            value_coef: weight of the value loss.
            entropy_coef: weight of the entropy bonus.
            max_grad_norm: clip the global gradient norm to this; null: no clipping.
            normalize_advantages: standardize the advantages within each minibatch.
            recompute_advantages: recompute the advantages and value targets with the current value network before
                every epoch after the first (Andrychowicz et al. 2021; Tianshou's ``recompute_adv``).
            normalize_obs: normalize observations by running mean and std (saved in the checkpoint).
            normalize_reward: divide rewards by the running std of the discounted return (saved in the checkpoint).
            eval_episodes: evaluation episodes per validation (``val/episodic_return`` is their mean).
            test_episodes: evaluation episodes of ``rlgen test`` (``test/episodic_return``).
            video_dir: record the first evaluation episode of each validation/test here (and to the logger).
            seed: environment seed; None uses the run's ``seed_everything``.
        """
        super().__init__(env_id, env_options, num_envs, eval_episodes, test_episodes, video_dir, seed)
        check_range("> 0", lr=lr, clip_range=clip_range, max_grad_norm=max_grad_norm)
        check_range(">= 1", num_steps=num_steps, update_epochs=update_epochs, num_minibatches=num_minibatches)
        check_range("in [0, 1]", gamma=gamma, gae_lambda=gae_lambda)
        check_range(">= 0", value_coef=value_coef, entropy_coef=entropy_coef)
        if num_minibatches > num_steps * num_envs:
            raise RlgenError(f"model.num_minibatches={num_minibatches} is more than the rollout's "
                             f"{num_steps * num_envs} steps (num_steps * num_envs); lower num_minibatches or raise "
                             "num_steps")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.policy = policy  # None: the default for the env's action space, chosen in setup
        self.obs_rms: RunningMeanStd | None = None  # built in setup with normalize_obs
        self.reward_scaler: RewardScaler | None = None  # built in setup with normalize_reward
        self.source: RolloutExperience | None = None
        self.register_buffer("action_low", torch.zeros(0), persistent=False)  # Box bounds, set in setup
        self.register_buffer("action_high", torch.zeros(0), persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy env actions for raw observations ``(B, D)``: the most likely ``(B,)``, or the Gaussian's mean
        clipped into the action bounds ``(B, A)``. The observation statistics are read, not updated."""
        mode = self.policy.pi(self._normalize(obs)).mode  # (B,) argmax or (B, A) mean
        return torch.clamp(mode, self.action_low, self.action_high) if self.continuous else mode

    def training_step(self, batch: RolloutBatch, batch_idx: int) -> torch.Tensor:
        """One minibatch step of PPO on transitions of the latest rollout (``RolloutExperience`` yields them)."""
        hp = self.hparams
        dist, values = self.policy.distribution(batch.obs)  # pi_theta(. | s_t), batch shape (B,); V(s_t) (B,)
        log_probs = dist.log_prob(batch.actions)  # (B,)
        advantages = batch.advantages
        if hp.normalize_advantages and len(advantages) > 1:  # per minibatch
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss, approx_kl, clip_fraction = clipped_surrogate_loss(log_probs, batch.log_probs, advantages,
                                                                       hp.clip_range)
        v_loss = value_loss(values, batch.values, batch.returns, hp.clip_range if hp.clip_value_loss else None)
        entropy = dist.entropy().mean()
        loss = policy_loss + hp.value_coef * v_loss - hp.entropy_coef * entropy
        if self._is_logging_step(batch_idx):
            extra = {"train/std": self.policy.log_std.exp().mean().item()} if self.continuous else {}
            self._log_rollout(**{"train/loss": loss.item(), "train/policy_loss": policy_loss.item(),
                                 "train/value_loss": v_loss.item(), "train/entropy": entropy.item(),
                                 "train/approx_kl": approx_kl.item(), "train/clip_fraction": clip_fraction.item(),
                                 "train/explained_variance": explained_variance(batch.values, batch.returns),
                                 "train/lr": self.trainer.optimizers[0].param_groups[0]["lr"], **extra})
        return loss

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        # PPO takes ~150k small steps on Hopper: updating all tensors in one kernel (fused Adam, foreach RMSprop)
        # instead of a loop over them cuts the optimizer step's cost by more than half (bench/ppo.py times the run).
        if hp.optimizer == "rmsprop":
            optimizer = torch.optim.RMSprop(self.parameters(), lr=hp.lr, alpha=0.99, eps=1e-5, foreach=True)
        else:
            fused = self.device.type in ("cpu", "cuda")
            optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, eps=1e-5, fused=fused)
        total = self.trainer.max_steps  # -1: no limit, nothing to anneal towards
        if not hp.anneal_lr or total is None or total <= 0 or not math.isfinite(total):
            return optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Clip the global gradient norm to ``max_grad_norm`` (``trainer.gradient_clip_val``, if set, wins)."""
        clip = gradient_clip_val if gradient_clip_val else self.hparams.max_grad_norm
        if clip:
            self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm=gradient_clip_algorithm
                                or "norm")

    # ------------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        if self.policy is not None and self.policy.built:
            return
        from gymnasium.spaces import Box

        from rlgen.envs import check_policy_actions

        obs_space, action_space = self._env_spaces()
        n_actions = check_policy_actions(action_space, "PPO")  # Discrete: actions; Box: dimensions
        continuous = isinstance(action_space, Box)
        if self.policy is None:
            self.policy = (GaussianPolicy(orthogonal_init=True) if continuous
                           else CategoricalPolicy(hidden_sizes=[64, 64], activation="tanh", orthogonal_init=True))
        if continuous != isinstance(self.policy, GaussianPolicy):
            needed, kind = ("GaussianPolicy", "Box") if continuous else ("CategoricalPolicy", "Discrete")
            raise RlgenError(f"{self.hparams.env_id} has {kind} actions, which need model.policy {needed} "
                             f"(got {type(self.policy).__name__}); or leave model.policy null for the default")
        if continuous:
            self.action_low = torch.as_tensor(action_space.low, dtype=torch.float32, device=self.device)  # (A,)
            self.action_high = torch.as_tensor(action_space.high, dtype=torch.float32, device=self.device)
        self.policy.build(obs_space.shape, n_actions, value_head=True)
        if self.hparams.normalize_obs:
            self.obs_rms = RunningMeanStd(obs_space.shape).to(self.device)
        if self.hparams.normalize_reward:
            self.reward_scaler = RewardScaler(self.hparams.gamma).to(self.device)

    def on_fit_start(self) -> None:
        hp = self.hparams
        self.envs = self._make_train_envs()
        self.source = RolloutExperience(
            self.envs, self._act, self._value, hp.num_steps, hp.gamma, hp.gae_lambda, hp.update_epochs,
            hp.num_minibatches, seed=self.env_seed, stats=self.rollout,
            reward_fn=self.reward_scaler.scale if self.reward_scaler is not None else None,
            seen_value=self._seen_value if hp.recompute_advantages else None)

    def on_train_batch_start(self, batch: RolloutBatch, batch_idx: int) -> None:
        if batch_idx % (self.hparams.update_epochs * self.hparams.num_minibatches) == 0:  # a rollout's first step
            self._merge_statistics()

    def on_train_end(self) -> None:
        self._merge_statistics()  # the final checkpoint holds every rank's data

    # ------------------------------------------------------------------------------- helpers
    def _merge_statistics(self) -> None:
        """DDP: every rank's normalization statistics become those of all ranks' rollouts so far (each rank steps
        its own environments), so that the ranks normalize alike and rank 0's checkpoint holds them all."""
        if self.trainer.world_size == 1:
            return

        def total(x: np.ndarray) -> np.ndarray:  # the sum over the ranks, on the strategy's device
            summed = self.trainer.strategy.reduce(torch.as_tensor(x, device=self.device), reduce_op="sum")
            return summed.cpu().numpy()

        for stats in (self.obs_rms, self.reward_scaler):
            if stats is not None:
                stats.merge(total)

    def _normalize(self, obs: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Observations as the policy sees them, float32 ``(N, D)`` on this device: normalized with the frozen
        statistics."""
        if self.obs_rms is not None:
            return self.obs_rms.normalize(obs).to(self.device)  # float32 (from numpy) or obs's float dtype
        return torch.as_tensor(obs).to(device=self.device, dtype=torch.float32)

    @torch.no_grad()
    def _act(self, obs: np.ndarray) -> PolicyStep:
        """The rollout's policy for observations ``(N, D)``: updates the observation statistics (training only
        calls this), then samples a ~ pi(. | s)."""
        if self.obs_rms is not None:
            self.obs_rms.update(obs)
        seen = self._normalize(obs)  # (N, D) float32
        dist, values = self.policy.distribution(seen)
        actions = dist.sample()  # (N,) or (N, A) unclipped
        return PolicyStep(actions.cpu().numpy(), seen, actions, dist.log_prob(actions), values)

    @torch.no_grad()
    def _value(self, obs: np.ndarray) -> torch.Tensor:
        return self._seen_value(self._normalize(obs))  # (N,) for raw observations

    @torch.no_grad()
    def _seen_value(self, seen: torch.Tensor) -> torch.Tensor:
        return self.policy.value_of(seen)  # (M,) for observations as the policy saw them (already normalized)

    @torch.no_grad()
    def _eval_action(self, obs: np.ndarray) -> int | np.ndarray:
        action = self(torch.as_tensor(obs).unsqueeze(0))[0]  # () index or (A,) clipped mean
        return action.cpu().numpy() if self.continuous else int(action)


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """``1 - Var(targets - predictions) / Var(targets)``: 1 for a perfect value function, 0 for a constant one."""
    var = targets.var().item() if len(targets) > 1 else 0.0
    return float("nan") if var == 0 else 1.0 - (targets - predictions).var().item() / var
