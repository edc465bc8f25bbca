"""REINFORCE: Monte Carlo policy gradient (Williams, 1992)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from rlgen.envs.options import EnvOptions
from rlgen.errors import RlgenError, check_range
from rlgen.experience.sources import EpisodeBatch, EpisodeExperience
from rlgen.lightning_modules.rl_system import RLSystem
from rlgen.nets.rl import CategoricalPolicy, GaussianPolicy, Policy


def discounted_returns(rewards: np.ndarray, lengths: np.ndarray, gamma: float, reward_to_go: bool = True,
                       reset_on_reward: bool = False) -> np.ndarray:
    """Per-step returns of episodes laid end to end.

    Args:
        rewards: ``(T,)`` rewards of all episodes, one after the other.
        lengths: ``(E,)`` episode lengths, summing to T.
        gamma: discount factor.
        reward_to_go: G_t = sum_{k >= t} gamma^(k-t) r_k; otherwise every step gets the episode's G_0.
        reset_on_reward: restart the sum at every non-zero reward (Pong: each point is its own game).
    """
    assert int(lengths.sum()) == len(rewards), f"lengths sum to {lengths.sum()}, but there are {len(rewards)} rewards"
    returns = np.empty(len(rewards), dtype=np.float64)
    start = 0
    for length in lengths.tolist():
        g = 0.0
        for t in range(start + length - 1, start - 1, -1):
            if reset_on_reward and rewards[t] != 0:
                g = 0.0
            g = rewards[t] + gamma * g
            returns[t] = g
        if not reward_to_go:
            returns[start:start + length] = returns[start]
        start += length
    return returns


def reinforce_loss(log_probs: torch.Tensor, entropies: torch.Tensor, advantages: torch.Tensor, n_episodes: int,
                   entropy_coef: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, entropy)``: -1/E sum_t A_t log pi(a_t | s_t) - entropy_coef * mean_t H(pi(. | s_t)).

    Args:
        log_probs: ``(T,)`` log pi(a_t | s_t) of the actions taken (``dist.log_prob(actions)``).
        entropies: ``(T,)`` H(pi(. | s_t)) (``dist.entropy()``).
        advantages: ``(T,)`` weights of the log-probabilities (returns minus baseline, maybe normalized).
        n_episodes: E, the number of episodes in the batch (the estimator averages over episodes).
        entropy_coef: weight of the entropy bonus.
    """
    entropy = entropies.mean()
    loss = -(log_probs * advantages.detach()).sum() / n_episodes - entropy_coef * entropy
    return loss, entropy


class Reinforce(RLSystem):
    r"""REINFORCE (Williams, "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning", 1992): the Monte Carlo policy gradient over batches of whole episodes.

    .. math::
        L(\theta) = -\frac{1}{E} \sum_{e=1}^{E} \sum_t \big(G_t - b_t\big) \log \pi_\theta(a_t | s_t)
                    - \beta\, \overline{H(\pi_\theta(\cdot | s_t))}
                    \;[+\, c_v\, \overline{(G_t - V_\phi(s_t))^2}]

    with the reward-to-go :math:`G_t = \sum_{k \ge t} \gamma^{k-t} r_k` (or the whole return
    :math:`G_0`), a baseline :math:`b_t` (none, a running mean of returns, or a learned
    :math:`V_\phi(s_t)`), and :math:`G_t - b_t` standardized within the batch if ``normalize_returns``.

    The policy network returns a ``torch.distributions`` object (``Policy.distribution``), one of two kinds,
    chosen by the environment's action space (``policy: null``) or by the config; the loss takes its
    ``log_prob`` and ``entropy`` and acting its ``sample``, the same code for both:

    * ``Discrete`` actions, :class:`~rlgen.nets.rl.CategoricalPolicy`: logits :math:`z(s)`, the probabilities
      :math:`\pi(\cdot|s) = \mathrm{softmax}(z(s))`, actions drawn from that multinomial. Score function:
      :math:`\nabla_z \log \pi(a|s) = \mathrm{onehot}(a) - \mathrm{softmax}(z(s))`. Greedy action: the argmax.
    * ``Box`` actions, :class:`~rlgen.nets.rl.GaussianPolicy`: a mean :math:`\mu(s)` and a standard deviation
      :math:`\sigma` (a learned parameter per action dimension), :math:`a \sim N(\mu(s), \mathrm{diag}(\sigma^2))`,
      :math:`\log \pi(a|s) = \sum_i -\frac{(a_i - \mu_i)^2}{2\sigma_i^2} - \log \sigma_i - \frac{1}{2}\log 2\pi`.
      Score functions: :math:`\nabla_\mu \log \pi = (a - \mu) / \sigma^2` and
      :math:`\nabla_{\log \sigma} \log \pi = (a - \mu)^2 / \sigma^2 - 1`. The sample is clipped into the
      space's bounds before ``env.step``, and :math:`\log \pi` is that of the unclipped sample (as CleanRL and
      Stable-Baselines3 do). Greedy action: the mean, clipped.

    Deviations from the paper:
        * Adam instead of plain gradient ascent; the standardization is Karpathy's variance reduction.
        * With ``num_envs > 1`` an episode running when a batch fills continues into the next batch,
          so its first steps come from the previous policy.
        * Continuous actions are clipped, not squashed: the environment sees ``clip(a, low, high)`` but the
          gradient treats ``a`` as taken, which is biased where much of the Gaussian lies beyond a bound.
          A tanh squash would need the change-of-variables term and an atanh at the bounds; clipping keeps
          the plain Gaussian score above and lets the mean sit on a bound (bang-bang control).
    """

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        policy: Policy | None = None,
        env_options: EnvOptions = EnvOptions(),
        action_map: list[int] | None = None,
        num_envs: int = 1,
        episodes_per_batch: int = 1,
        lr: float = 1e-2,
        gamma: float = 0.99,
        reward_to_go: bool = True,
        normalize_returns: bool = True,
        baseline: Literal["none", "mean", "value"] = "none",
        baseline_momentum: float = 0.9,
        value_coef: float = 0.5,
        entropy_coef: float = 0.0,
        reset_return_on_reward: bool = False,
        eval_episodes: int = 10,
        test_episodes: int = 20,
        video_dir: str | None = None,
        seed: int | None = None,
    ) -> None:
        """
        Args:
            env_id: Gymnasium id with flat observations and Discrete or bounded Box actions.
            policy: the policy network, ``CategoricalPolicy`` (Discrete actions) or ``GaussianPolicy`` (Box actions);
                None: the one the env's action space needs, with its defaults. Sized for the env in ``setup``.
            env_options: how the environments are built (:class:`rlgen.envs.EnvOptions`, e.g. pong_from_pixels).
            action_map: Discrete only: env actions the policy chooses among (Pong: ``[2, 3]``, UP and DOWN); None: all.
            num_envs: environments stepped together in this process (per DDP rank).
            episodes_per_batch: whole episodes per gradient step.
            lr: Adam learning rate.
            gamma: discount factor.
            reward_to_go: weight log pi(a_t|s_t) by the return from t on (else by the whole episode's).
            normalize_returns: standardize the weights G_t - b_t within each batch.
            baseline: ``none``, ``mean`` (running mean of returns) or ``value`` (a learned V(s) head).
            baseline_momentum: momentum of the running-mean baseline.
            value_coef: weight of the value head's squared error (``baseline: value``).
            entropy_coef: weight of the entropy bonus.
            reset_return_on_reward: restart the return at each non-zero reward (Pong's points, as Karpathy).
            eval_episodes: evaluation episodes per validation (``val/episodic_return`` is their mean).
            test_episodes: evaluation episodes of ``rlgen test`` (``test/episodic_return``).
            video_dir: record the first evaluation episode of each validation/test here (and to the logger).
            seed: environment seed; None uses the run's ``seed_everything``.
        """
        super().__init__(env_id, env_options, num_envs, eval_episodes, test_episodes, video_dir, seed)
        check_range("> 0", lr=lr)
        check_range(">= 1", episodes_per_batch=episodes_per_batch)
        check_range("in [0, 1]", gamma=gamma, baseline_momentum=baseline_momentum)
        check_range(">= 0", value_coef=value_coef, entropy_coef=entropy_coef)
        if action_map is not None and len(action_map) < 2:
            raise RlgenError(f"model.action_map must list at least two env actions (e.g. [2, 3]), got {action_map}")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.policy = policy  # None: the default for the env's action space, chosen in setup
        self.source: EpisodeExperience | None = None
        self.register_buffer("baseline_mean", torch.zeros(()))
        self.register_buffer("action_map", torch.tensor(action_map or [], dtype=torch.long), persistent=False)
        self.register_buffer("action_low", torch.zeros(0), persistent=False)  # Box bounds, set in setup
        self.register_buffer("action_high", torch.zeros(0), persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy env actions for observations ``(B, D)``: the most likely ``(B,)``, or the Gaussian's mean
        clipped into the action bounds ``(B, A)``."""
        action = self._to_env_action(self.policy.pi(obs).mode)  # (B,) argmax or (B, A) mean
        return torch.clamp(action, self.action_low, self.action_high) if self.continuous else action

    def training_step(self, batch: EpisodeBatch, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        dist, values = self.policy.distribution(batch.obs)  # pi(. | s_t), batch shape (T,); values (T,) or None
        returns = torch.as_tensor(discounted_returns(batch.rewards.cpu().numpy(), batch.lengths.cpu().numpy(),
                                                     hp.gamma, hp.reward_to_go, hp.reset_return_on_reward),
                                  dtype=torch.float32, device=self.device)  # (T,)
        advantages = self._advantages(returns, values)  # (T,)
        actions = self._to_policy_action(batch.actions)  # (T,) indices or (T, A) unclipped Gaussian samples
        loss, entropy = reinforce_loss(dist.log_prob(actions), dist.entropy(), advantages, len(batch.lengths),
                                       hp.entropy_coef)
        if values is not None:
            value_loss = F.mse_loss(values, returns)
            loss = loss + hp.value_coef * value_loss
        if self._is_logging_step(batch_idx):
            extra = {"train/std": self.policy.log_std.exp().mean().item()} if self.continuous else {}
            self._log_rollout(**{"train/loss": loss.item(), "train/entropy": entropy.item(), **extra})
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.policy.parameters(), lr=self.hparams.lr)

    # ------------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        if self.policy is not None and self.policy.built:
            return
        from gymnasium.spaces import Box

        from rlgen.envs import check_policy_actions

        env_id = self.hparams.env_id
        obs_space, action_space = self._env_spaces()
        n_actions = check_policy_actions(action_space, "Reinforce")  # Discrete: actions; Box: dimensions
        continuous = isinstance(action_space, Box)
        if self.policy is None:
            self.policy = GaussianPolicy() if continuous else CategoricalPolicy()
        if continuous != isinstance(self.policy, GaussianPolicy):
            needed, kind = ("GaussianPolicy", "Box") if continuous else ("CategoricalPolicy", "Discrete")
            raise RlgenError(f"{env_id} has {kind} actions, which need model.policy {needed} "
                             f"(got {type(self.policy).__name__}); or leave model.policy null for the default")
        if continuous:
            if len(self.action_map):
                raise RlgenError(f"model.action_map is for Discrete actions, but {env_id}'s are {action_space}")
            self.action_low = torch.as_tensor(action_space.low, dtype=torch.float32, device=self.device)  # (A,)
            self.action_high = torch.as_tensor(action_space.high, dtype=torch.float32, device=self.device)
        elif len(self.action_map):
            bad = [a for a in self.action_map.tolist() if not 0 <= a < n_actions]
            if bad:
                raise RlgenError(f"Reinforce action_map has {bad}, but {env_id} has actions 0..{n_actions - 1}")
            n_actions = len(self.action_map)
        self.policy.build(obs_space.shape, n_actions, value_head=self.hparams.baseline == "value")

    def on_fit_start(self) -> None:
        self.envs = self._make_train_envs()
        pong_like = self.env_options.pong_from_pixels
        self.source = EpisodeExperience(self.envs, self._act, self.hparams.episodes_per_batch, seed=self.env_seed,
                                        stats=self.rollout, obs_dtype=np.int8 if pong_like else None)

    # ------------------------------------------------------------------------------- helpers
    @torch.no_grad()
    def _act(self, obs: np.ndarray) -> np.ndarray:
        """Env actions sampled from pi(. | s) for observations ``(N, D)``: ``(N,)`` indices, or ``(N, A)``
        unclipped Gaussian samples (the training envs clip them)."""
        dist = self.policy.pi(torch.as_tensor(obs, device=self.device))
        return self._to_env_action(dist.sample()).cpu().numpy()  # (N,) or (N, A)

    def _advantages(self, returns: torch.Tensor, values: torch.Tensor | None) -> torch.Tensor:
        """The weights of log pi: G_t - b_t, standardized within the batch if ``normalize_returns``."""
        hp = self.hparams
        if hp.baseline == "value":
            advantages = returns - values.detach()
        elif hp.baseline == "mean":
            advantages = returns - self.baseline_mean
            self.baseline_mean.lerp_(returns.mean(), 1.0 - hp.baseline_momentum)  # running mean, after use
        else:
            advantages = returns
        if hp.normalize_returns and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return advantages

    @torch.no_grad()
    def _eval_action(self, obs: np.ndarray) -> int | np.ndarray:
        action = self(torch.as_tensor(obs, device=self.device).unsqueeze(0))[0]  # () index or (A,) clipped mean
        return action.cpu().numpy() if self.continuous else int(action)

    def _to_env_action(self, index: torch.Tensor) -> torch.Tensor:
        return self.action_map[index] if len(self.action_map) else index

    def _to_policy_action(self, env_action: torch.Tensor) -> torch.Tensor:
        if not len(self.action_map):
            return env_action
        return (env_action.unsqueeze(1) == self.action_map).long().argmax(dim=1)  # (T,)
