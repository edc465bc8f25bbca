"""Soft Actor-Critic with a learned temperature (Haarnoja et al., 2018)."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from rlgen.envs.options import EnvOptions
from rlgen.errors import RlgenError, check_range
from rlgen.experience.sources import ReplayExperience
from rlgen.lightning_modules.dqn import polyak_update
from rlgen.lightning_modules.rl_system import RLSystem
from rlgen.nets.sac import QCritics, SquashedGaussianActor


def soft_q_target(rewards: torch.Tensor, discounts: torch.Tensor, next_q: torch.Tensor, next_log_prob: torch.Tensor,
                  alpha: torch.Tensor | float) -> torch.Tensor:
    """y = r + discount * (min_j Q'_j(s', a') - alpha * log pi(a' | s')), with ``discount = gamma (1 - terminated)``.

    A truncated (time-limit) transition keeps its discount, so the target bootstraps through it.

    Args:
        rewards: ``(B,)`` rewards.
        discounts: ``(B,)`` gamma, or 0 where the episode terminated (the replay buffer's ``discounts``).
        next_q: ``(J, B)`` target critics' Q'_j(s', a') at a fresh action a' ~ pi(. | s').
        next_log_prob: ``(B,)`` log pi(a' | s').
        alpha: the entropy temperature.
    """
    soft_value = next_q.min(dim=0).values - alpha * next_log_prob  # (B,) V(s') = min_j Q'_j - alpha log pi
    return rewards + discounts * soft_value


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """J_Q = sum_j E[1/2 (Q_j(s, a) - y)^2] for the critics' values ``q (J, B)`` and the targets ``y (B,)``."""
    return 0.5 * (q - target.unsqueeze(0)).pow(2).mean(dim=1).sum()


def actor_loss(q: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """J_pi = E[alpha * log pi(a~ | s) - min_j Q_j(s, a~)] at reparameterized actions a~ ~ pi(. | s).

    Args:
        q: ``(J, B)`` critics' values at a~.
        log_prob: ``(B,)`` log pi(a~ | s).
        alpha: the entropy temperature (a constant here).
    """
    return (alpha * log_prob - q.min(dim=0).values).mean()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J(alpha) = E[-alpha * (log pi(a~ | s) + H_target)], alpha = exp(log_alpha), the log-probabilities ``(B,)``
    held constant: alpha grows while the policy's entropy ``-log pi`` is below ``H_target``, and shrinks above."""
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


class SAC(RLSystem):
    r"""Soft Actor-Critic (Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", 2018, Algorithm 1),
    with twin Q critics, target critics moved by Polyak averaging, a tanh-squashed Gaussian actor and a learned
    entropy temperature :math:`\alpha`.

    Losses over a replay minibatch :math:`(s, a, r, s', d)`, with :math:`a' \sim \pi_\phi(\cdot|s')` and a
    reparameterized :math:`\tilde a = \tanh(\mu_\phi(s) + \sigma_\phi(s) \odot \epsilon)`:

    .. math::
        y &= r + \gamma (1 - d) \big(\min_{j=1,2} Q_{\bar\theta_j}(s', a') - \alpha \log \pi_\phi(a'|s')\big) \\
        J_Q(\theta_j) &= \mathbb{E}\big[\tfrac12 (Q_{\theta_j}(s, a) - y)^2\big] \\
        J_\pi(\phi) &= \mathbb{E}\big[\alpha \log \pi_\phi(\tilde a|s) - \min_j Q_{\theta_j}(s, \tilde a)\big] \\
        J(\alpha) &= \mathbb{E}\big[-\alpha \big(\log \pi_\phi(\tilde a|s) + \bar{\mathcal H}\big)\big],
            \quad \bar{\mathcal H} = -\dim \mathcal A \\
        \bar\theta_j &\leftarrow \tau \theta_j + (1 - \tau) \bar\theta_j

    with :math:`\log \pi(a|s) = \sum_i \log \mathcal N(u_i; \mu_i, \sigma_i) - \log(1 - \tanh^2 u_i)`, the
    squashing's change of variables (:class:`~rlgen.nets.sac.TanhNormal`). :math:`d` is 1 on a terminal step
    only: a time-limit truncation bootstraps (the replay buffer's ``discounts`` are :math:`\gamma (1 - d)`).
    The greedy policy (evaluation, ``forward``) acts with :math:`\tanh(\mu_\phi(s))`. The policy acts in
    :math:`[-1, 1]^A`; the environments are wrapped in ``RescaleAction``, which maps that cube onto the
    ``Box`` bounds, so the buffer, the critics and :math:`\log\pi` all work in the squashed units.

    Counting: a *phase* is ``train_frequency`` env steps (over all envs), then ``gradient_steps`` gradient steps,
    each on a fresh replay minibatch. One gradient step is the critic, actor and temperature updates, two
    optimizer steps (the critics', then the actor's and the temperature's together), then the target update.
    One Lightning batch is one phase (as in DQN): ``training_step`` fetches it (the env steps happen then, with
    the current actor) and takes its gradient steps with manual optimization. ``trainer.global_step`` and
    ``max_steps`` count *optimizer* steps, two per gradient step; ``val_check_interval`` and
    ``log_every_n_steps`` count phases. The first ``warm_start_steps`` env steps take uniform random actions
    and no gradient step.

    Deviations from the paper:
        * ``log pi`` is that of the action in the squashed units [-1, 1]^A (as Stable-Baselines3), not of the
          env's action: for a Box wider than [-1, 1] the entropy (and so ``target_entropy``'s meaning) differs
          by the constant ``sum_i log((high_i - low_i) / 2)``.
        * The temperature's loss differentiates ``alpha = exp(log_alpha)`` with respect to ``log_alpha``.
        * ``warm_start_steps`` of uniform random actions before learning (as the authors' code and CleanRL).
        * Episodes end on time limits as *truncated*, and targets bootstrap through them.
    """

    # Each of the two steps leaves the other networks without gradients: DDP must look for unused parameters.
    ddp_strategy = "ddp_find_unused_parameters_true"  # what `rlgen` uses for `strategy: ddp`

    OPTIMIZER_STEPS_PER_GRADIENT_STEP = 2  # critics; actor and temperature: what global_step counts

    def __init__(
        self,
        env_id: str = "Pendulum-v1",
        actor: SquashedGaussianActor | None = None,
        critic: QCritics | None = None,
        env_options: EnvOptions = EnvOptions(),
        num_envs: int = 1,
        actor_lr: float = 3e-4,
        critic_lr: float = 1e-3,
        alpha_lr: float = 1e-3,
        gamma: float = 0.99,
        tau: float = 0.005,
        batch_size: int = 256,
        buffer_size: int = 1_000_000,
        save_buffer: bool = False,
        warm_start_steps: int = 5_000,
        train_frequency: int = 1,
        gradient_steps: int = 1,
        init_alpha: float = 1.0,
        target_entropy: float | None = None,
        eval_episodes: int = 10,
        test_episodes: int = 20,
        video_dir: str | None = None,
        seed: int | None = None,
    ) -> None:
        """
        Args:
            env_id: Gymnasium id with flat observations and a bounded Box of continuous actions.
            actor: the policy network (None: ``SquashedGaussianActor()``, MLP 256-256); sized in ``setup``.
            critic: the Q critics (None: ``QCritics()``, two MLPs 256-256); the target critics are its copy.
            env_options: how the environments are built (:class:`rlgen.envs.EnvOptions`).
            num_envs: environments stepped together in this process (per DDP rank).
            actor_lr: Adam learning rate of the actor.
            critic_lr: Adam learning rate of the critics.
            alpha_lr: Adam learning rate of log alpha, the temperature; 0 keeps alpha at ``init_alpha`` (the fixed
                temperature of the first SAC paper, as Tianshou's default alpha 0.2).
            gamma: discount factor.
            tau: target critics' Polyak rate: theta' <- tau * theta + (1 - tau) * theta' after every gradient step.
            batch_size: transitions per gradient step.
            buffer_size: replay capacity in transitions.
            save_buffer: also store the replay buffer in checkpoints (resume with the same transitions).
            warm_start_steps: uniform random env steps that fill the buffer before learning starts.
            train_frequency: env steps (over all envs) collected between training phases.
            gradient_steps: gradient steps per training phase.
            init_alpha: the temperature alpha at the start.
            target_entropy: the entropy the temperature steers the policy to (null: -dim(A), the paper's).
            eval_episodes: evaluation episodes per validation (``val/episodic_return`` is their mean).
            test_episodes: evaluation episodes of ``rlgen test`` (``test/episodic_return``).
            video_dir: record the first evaluation episode of each validation/test here (and to the logger).
            seed: environment seed; None uses the run's ``seed_everything``.
        """
        super().__init__(env_id, env_options, num_envs, eval_episodes, test_episodes, video_dir, seed)
        check_range("> 0", actor_lr=actor_lr, critic_lr=critic_lr, init_alpha=init_alpha)
        check_range(">= 0", alpha_lr=alpha_lr)
        check_range(">= 1", batch_size=batch_size, buffer_size=buffer_size, train_frequency=train_frequency,
                    gradient_steps=gradient_steps)
        check_range("in [0, 1]", gamma=gamma)
        check_range("in (0, 1]", tau=tau)
        if buffer_size < batch_size:
            raise RlgenError(f"model.buffer_size must be >= model.batch_size (the buffer holds at least one batch), "
                             f"got {buffer_size} < {batch_size}")
        if warm_start_steps < batch_size:
            raise RlgenError(f"model.warm_start_steps must be >= model.batch_size (the first batch needs that many "
                             f"transitions), got {warm_start_steps} < {batch_size}")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.automatic_optimization = False  # two optimizers, stepped by hand in the paper's order
        self.actor = actor if actor is not None else SquashedGaussianActor()
        self.critic = critic if critic is not None else QCritics()
        self.critic_target: QCritics | None = None  # a copy of the critics, built in setup
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(init_alpha)))  # () the temperature, in log
        self.target_entropy = 0.0  # -dim(A) unless given, set in setup
        self.register_buffer("action_low", torch.zeros(0), persistent=False)  # Box bounds (A,), set in setup
        self.register_buffer("action_high", torch.zeros(0), persistent=False)
        self.obs_space: Any = None
        self.buffer: Any = None
        self.source: ReplayExperience | None = None
        self._rng = np.random.default_rng()  # warm-up actions (seeded in on_fit_start, checkpointed)
        self._saved_optimizers = 0  # optimizers in the checkpoint being loaded (0: none)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy env actions ``(B, A)`` within the Box bounds for observations ``(B, D)``: tanh(mu(s)), rescaled."""
        squashed = self.actor(obs).mode  # (B, A) in [-1, 1]
        return self.action_low + (squashed + 1.0) * 0.5 * (self.action_high - self.action_low)

    def training_step(self, dataloader_iter: Iterator) -> torch.Tensor | None:
        """One phase: fetch its minibatches (the env steps happen now, with the current actor), then one gradient
        step of the paper's Algorithm 1 on each: critics, actor, temperature, target critics.

        Lightning's ``dataloader_iter`` signature lets the phase be collected here: with a plain ``batch``
        argument Lightning would prefetch the next phase, collected with the previous weights.

        Returns the sum of the phase's three losses, detached: nothing is backpropagated from it (the steps are
        taken above); ``FaultGuard`` checks it after every phase and stops the run if it is not finite."""
        # phase: ReplayBatch(obs (G, B, D), actions (G, B, A), rewards (G, B), next_obs (G, B, D), discounts (G, B))
        phase, batch_idx, _ = next(dataloader_iter)
        phase = self.trainer.strategy.batch_to_device(phase)
        opt_critic, opt_policy = self.optimizers()
        metrics: list[torch.Tensor] = []
        for i in range(phase.actions.shape[0]):
            if 0 < self.trainer.max_steps <= self.global_step:
                break  # the budget ends inside this phase
            s, a, r, s_next, discount = (field[i] for field in phase)  # (B, D), (B, A), (B,), (B, D), (B,)
            alpha = self.log_alpha.detach().exp()  # ()

            # Critics: theta_j <- theta_j - lr grad J_Q(theta_j), J_Q = E[1/2 (Q_j(s, a) - y)^2]
            with torch.no_grad():
                next_pi = self.actor(s_next)  # pi(. | s')
                a_next = next_pi.sample()  # a' ~ pi(. | s'), (B, A)
                # y = r + gamma (1 - d) (min_j Q'_j(s', a') - alpha log pi(a' | s')), (B,)
                y = soft_q_target(r, discount, self.critic_target(s_next, a_next), next_pi.log_prob(a_next), alpha)
            q = self.critic(s, a)  # (2, B)
            loss_q = critic_loss(q, y)
            self._step(opt_critic, loss_q)

            # Actor:       phi <- phi - lr grad J_pi(phi),      J_pi = E[alpha log pi(a~ | s) - min_j Q_j(s, a~)]
            # Temperature: alpha <- alpha - lr grad J(alpha),  J(alpha) = E[-alpha (log pi(a~ | s) + H_target)]
            # One optimizer step for both: J_pi holds alpha constant and J(alpha) log pi, so the gradient of the sum
            # is each loss's own gradient, and Adam with a parameter group each steps them as two Adams would.
            with self.toggled_optimizer(opt_policy):  # the critics get no gradient
                a_new, log_prob = self.actor(s).rsample_with_log_prob()  # a~ = tanh(mu + sigma * eps), (B, A), (B,)
                loss_pi = actor_loss(self.critic(s, a_new), log_prob, alpha)
                loss_alpha = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
                self._step(opt_policy, loss_pi + loss_alpha)

            # Target critics: theta'_j <- tau theta_j + (1 - tau) theta'_j
            polyak_update(self.critic_target, self.critic, self.hparams.tau)

            with torch.no_grad():
                metrics.append(torch.stack([loss_q, loss_pi, loss_alpha, -log_prob.mean(), q.mean()]))
        if not metrics:
            return None
        stacked = torch.stack(metrics)  # (G, 5): the phase's gradient steps
        if self._is_logging_step(batch_idx):
            critic, actor, temperature, entropy, q_mean = stacked.mean(dim=0).tolist()
            self._log_rollout(**{"train/critic_loss": critic, "train/actor_loss": actor,
                                 "train/alpha_loss": temperature, "train/alpha": self.log_alpha.exp().item(),
                                 "train/entropy": entropy, "train/q_mean": q_mean})
        return stacked[:, :3].sum()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        # The fused kernel updates all of a network's tensors at once: SAC takes one small step per env step,
        # where the default per-tensor Adam costs about as much as the networks (see DQN).
        fused = self.device.type in ("cpu", "cuda")
        hp = self.hparams
        return [torch.optim.Adam(self.critic.parameters(), lr=hp.critic_lr, fused=fused),
                torch.optim.Adam([{"params": self.actor.parameters(), "lr": hp.actor_lr},
                                  {"params": [self.log_alpha], "lr": hp.alpha_lr}], fused=fused)]

    # ------------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        if self.critic_target is not None:
            return
        obs_space, action_space = self._env_spaces()
        action_dim = check_continuous_actions(action_space, obs_space, self.hparams.env_id)
        self.obs_space = obs_space
        self.action_low = torch.as_tensor(action_space.low, dtype=torch.float32, device=self.device)  # (A,)
        self.action_high = torch.as_tensor(action_space.high, dtype=torch.float32, device=self.device)
        target = self.hparams.target_entropy
        self.target_entropy = float(-action_dim if target is None else target)
        if not self.actor.built:
            self.actor.build(obs_space.shape, action_dim)
        if not self.critic.built:
            self.critic.build(obs_space.shape, action_dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

    def on_fit_start(self) -> None:
        from rlgen.experience import ReplayBuffer

        # Resuming: this runs before Lightning loads the optimizers' states, which a checkpoint of the earlier SAC
        # with three optimizers (the actor and the temperature apart) cannot fill.
        if self._saved_optimizers not in (0, self.OPTIMIZER_STEPS_PER_GRADIENT_STEP):
            raise RlgenError(
                f"this SAC checkpoint holds {self._saved_optimizers} optimizers, from an rlgen that stepped the actor "
                f"and the temperature apart and counted {self._saved_optimizers} optimizer steps a gradient step in "
                "max_steps: fit cannot resume it; `rlgen test` and `validate` still play it, or start a new run")
        hp = self.hparams
        self._rng = np.random.default_rng(self.env_seed)
        self.envs = self._make_train_envs()
        self.buffer = ReplayBuffer(hp.buffer_size, self.obs_space.shape, obs_dtype=np.float32, num_envs=hp.num_envs,
                                   gamma=hp.gamma, seed=self.env_seed, action_shape=self.action_low.shape,
                                   action_dtype=np.float32)
        self.source = ReplayExperience(self.envs, self.buffer, self._act, hp.batch_size, hp.train_frequency,
                                       hp.gradient_steps, seed=self.env_seed, stats=self.rollout, per_phase=True)
        restored = self._restored_rl_state or {}
        if "replay_buffer" in restored:
            self.buffer.load_state_dict(restored["replay_buffer"])
        if "rng" in restored:
            self._rng.bit_generator.state = restored["rng"]
        if "torch_rng" in restored:  # the actor's exploration noise
            torch.set_rng_state(restored["torch_rng"].cpu())
        # Warm-up: uniform random actions until the buffer holds warm_start_steps transitions.
        self.source.collect(self._random_act, max(0, hp.warm_start_steps - len(self.buffer)))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._saved_optimizers = len(checkpoint.get("optimizer_states") or [])

    # ------------------------------------------------------------------------------- helpers
    def _step(self, optimizer: Any, loss: torch.Tensor) -> None:
        """One step of ``optimizer`` on ``loss``: zero the gradients, backward (Lightning's), step."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()  # global_step + 1

    def _make_train_envs(self) -> Any:
        from gymnasium.wrappers.vector import RescaleAction

        # the policy's [-1, 1]^A onto the Box (float32 bounds: float64 ones make Gymnasium warn at every build)
        return RescaleAction(super()._make_train_envs(), np.float32(-1.0), np.float32(1.0))

    def _make_eval_env(self) -> Any:
        from gymnasium.wrappers import RescaleAction

        return RescaleAction(super()._make_eval_env(), np.float32(-1.0), np.float32(1.0))

    @torch.no_grad()
    def _act(self, obs: np.ndarray) -> np.ndarray:
        """Actions ``(N, A)`` in [-1, 1] sampled from pi(. | s) for observations ``(N, D)``."""
        return self.actor(torch.as_tensor(obs, device=self.device)).sample().cpu().numpy()

    def _random_act(self, obs: np.ndarray) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, size=(len(obs), *self.action_low.shape)).astype(np.float32)

    @torch.no_grad()
    def _eval_action(self, obs: np.ndarray) -> np.ndarray:
        """The greedy action tanh(mu(s)) ``(A,)`` in [-1, 1] (the evaluation env rescales it)."""
        return self.actor(torch.as_tensor(obs, device=self.device).unsqueeze(0)).mode[0].cpu().numpy()

    def _extra_rl_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": self._rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
        if self.hparams.save_buffer and self.buffer is not None:
            state["replay_buffer"] = self.buffer.state_dict()
        return state


def check_continuous_actions(action_space: Any, obs_space: Any, env_id: str) -> int:
    """The dimension of a bounded 1-D ``Box`` of actions with flat observations; a one-line RlgenError otherwise."""
    from gymnasium.spaces import Box

    if not isinstance(action_space, Box):
        raise RlgenError(f"SAC needs a continuous (Box) action space, but {env_id}'s is {action_space}; use an env "
                         "with Box actions (Pendulum-v1, Hopper-v5, ...), or DQN for discrete actions")
    if len(action_space.shape) != 1 or not (np.all(np.isfinite(action_space.low))
                                             and np.all(np.isfinite(action_space.high))):
        raise RlgenError(f"SAC squashes its actions into the Box's bounds, so it needs a bounded Box of one vector, "
                         f"but {env_id}'s is {action_space}")
    if len(obs_space.shape) != 1:
        raise RlgenError(f"SAC's networks take flat observations, but {env_id}'s are {obs_space}")
    return int(action_space.shape[0])
