"""Tabular Q-learning (and its Monte Carlo twin) with the Q table as a parameter trained by plain SGD."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from rlgen.envs import check_discrete_actions
from rlgen.envs.options import EnvOptions
from rlgen.errors import RlgenError, check_range
from rlgen.experience import EpisodeBatch, EpisodeExperience, ReplayBatch, ReplayExperience
from rlgen.lightning_modules.reinforce import discounted_returns
from rlgen.lightning_modules.rl_system import RLSystem


class TabularQLearning(RLSystem):
    r"""Tabular Q-learning (Watkins, "Learning from delayed rewards", 1989) as gradient descent.

    Q is an ``nn.Parameter`` of shape ``(n_states, n_actions)``. Each training step minimizes

    .. math::
        L = \tfrac12 \sum_i \big(Y_i - Q(s_i, a_i)\big)^2, \qquad
        Y_i = \begin{cases} r_i + \gamma\,(1 - \mathrm{terminated}_i) \max_{a'} Q(s'_i, a') & \text{td} \\
                            G_i = \sum_{k \ge i} \gamma^{k-i} r_k & \text{mc} \end{cases}

    with :math:`Y` held constant. Since :math:`\partial L / \partial Q(s,a) = -(Y - Q(s,a))`, one SGD
    step at learning rate :math:`\alpha` is exactly the lecture's update
    :math:`Q(s,a) \leftarrow Q(s,a) + \alpha\,\delta`, :math:`\delta = Y - Q(s,a)`.
    Behaviour is epsilon-greedy (ties broken at random); evaluation is greedy.

    ``td`` updates after every environment step (a replay memory of one transition); ``mc`` after
    every episode, moving Q(s,a) toward the return of each roll-out: with a constant alpha, Q is an
    exponentially weighted average of the returns seen from (s,a).

    Deviations from the textbook:
        * A truncated episode (time limit) bootstraps from Q(s'), a terminated one does not.
        * ``mc`` estimates the Q of the epsilon-greedy behaviour policy (it is on-policy); decay
          epsilon (``epsilon_decay_steps``) to approach the optimal Q.
    """

    def __init__(
        self,
        env_id: str = "rlgen/JumpChain-v0",
        env_options: EnvOptions = EnvOptions(),
        target: Literal["td", "mc"] = "td",
        alpha: float = 0.5,
        gamma: float = 1.0,
        epsilon: float = 0.5,
        epsilon_end: float = 0.0,
        epsilon_decay_steps: int = 0,
        num_envs: int = 1,
        eval_episodes: int = 1,
        test_episodes: int = 1,
        video_dir: str | None = None,
        seed: int | None = None,
    ) -> None:
        """
        Args:
            env_id: Gymnasium id with Discrete observations and actions (``FrozenLake-v1`` works too).
            env_options: how the environment is built (:class:`rlgen.envs.EnvOptions`),
                e.g. ``{env_kwargs: {step_reward: -1}}``.
            target: ``td`` (Q-learning, one update per env step) or ``mc`` (Monte Carlo returns, per episode).
            alpha: learning rate of the SGD step, i.e. the alpha of Q <- Q + alpha * delta.
            gamma: discount factor.
            epsilon: exploration rate of the epsilon-greedy behaviour policy (at the start of the decay).
            epsilon_end: exploration rate after ``epsilon_decay_steps`` env steps.
            epsilon_decay_steps: env steps of the linear decay from epsilon to epsilon_end; 0 keeps epsilon.
            num_envs: environments stepped together (td: one SGD step per vector step).
            eval_episodes: greedy episodes per validation (``val/episodic_return`` is their mean).
            test_episodes: greedy episodes of ``rlgen test`` (``test/episodic_return``).
            video_dir: record the first evaluation episode here (needs an env that renders rgb_array).
            seed: environment and exploration seed; None uses the run's ``seed_everything``.
        """
        super().__init__(env_id, env_options, num_envs, eval_episodes, test_episodes, video_dir, seed)
        check_range("> 0", alpha=alpha)
        check_range("in [0, 1]", gamma=gamma, epsilon=epsilon, epsilon_end=epsilon_end)
        check_range(">= 0", epsilon_decay_steps=epsilon_decay_steps)
        if target not in ("td", "mc"):
            raise RlgenError(f"model.target must be td or mc, got {target!r}")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.q: nn.Parameter | None = None  # (n_states, n_actions), sized for the env in setup
        self.source: ReplayExperience | EpisodeExperience | None = None
        self._rng = np.random.default_rng(0)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Greedy actions ``(B,)`` for states ``(B,)`` (the first best action on ties)."""
        return self.q[states].argmax(dim=1)

    def training_step(self, batch: ReplayBatch | EpisodeBatch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self._log_rollout(**{"train/loss": loss.item(), "rollout/epsilon": self.epsilon})
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.q], lr=self.hparams.alpha)

    # ------------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        if self.q is not None:
            return
        obs_space, action_space = self._env_spaces()
        n_actions = check_discrete_actions(action_space, "TabularQLearning")
        if not hasattr(obs_space, "n"):
            raise RlgenError(
                f"TabularQLearning needs a Discrete observation space (one table row per state), but "
                f"{self.hparams.env_id} has {type(obs_space).__name__}{getattr(obs_space, 'shape', '')} observations; "
                "use DQN for continuous or image observations"
            )
        self._build_table(int(obs_space.n), n_actions)

    def on_fit_start(self) -> None:
        self._rng = np.random.default_rng(self.env_seed)
        self.envs = self._make_train_envs()
        if self.hparams.target == "td":
            self.source = ReplayExperience(
                self.envs,
                _LastStep(self.hparams.gamma),
                self._act,
                batch_size=1,
                seed=self.env_seed,
                stats=self.rollout,
            )
        else:
            self.source = EpisodeExperience(
                self.envs, self._act, episodes_per_batch=1, seed=self.env_seed, stats=self.rollout
            )

    def on_test_epoch_end(self) -> None:
        if self.trainer.is_global_zero:
            from rich.console import Console

            Console().print(self.q_table())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.q is None:  # load_from_checkpoint: size the table from the checkpoint
            self._build_table(*checkpoint["state_dict"]["q"].shape)

    # ------------------------------------------------------------------------------- helpers
    @property
    def epsilon(self) -> float:
        """Exploration rate after ``rollout.env_steps`` environment steps (linear decay)."""
        hp = self.hparams
        if hp.epsilon_decay_steps == 0:
            return hp.epsilon
        progress = min(1.0, self.rollout.env_steps / hp.epsilon_decay_steps)
        return hp.epsilon + progress * (hp.epsilon_end - hp.epsilon)

    def q_table(self):
        """The Q table, visit counts and greedy action per state as a rich Table."""
        from rich.table import Table

        names = self._action_names()
        hp = self.hparams
        table = Table(title=f"Q table of {hp.env_id} (gamma={hp.gamma}, target={hp.target})")
        table.add_column("state", justify="right")
        for name in names:
            table.add_column(f"Q(s, {name})", justify="right")
        table.add_column("visits", justify="right")
        table.add_column("greedy")
        q, visits = self.q.detach().cpu(), self.visits.cpu()
        for s in range(len(q)):
            seen = visits[s].sum() > 0
            greedy = names[int(q[s].argmax())] if seen else "- (never left)"
            table.add_row(str(s), *(f"{v:+.2f}" for v in q[s].tolist()), str(int(visits[s].sum())), greedy)
        return table

    def _build_table(self, n_states: int, n_actions: int) -> None:
        self.q = nn.Parameter(torch.zeros(n_states, n_actions))
        self.register_buffer("visits", torch.zeros(n_states, n_actions))  # updates per (s, a), for the table

    def _loss(self, batch: ReplayBatch | EpisodeBatch) -> torch.Tensor:
        """1/2 sum_i (Y_i - Q(s_i, a_i))^2 with Y held constant; counts the visits of each (s, a)."""
        states, actions, targets = self._targets(batch)  # (B,), (B,), (B,)
        self.visits.index_put_((states, actions), torch.ones_like(targets), accumulate=True)
        return 0.5 * (targets - self.q[states, actions]).pow(2).sum()

    def _targets(self, batch: ReplayBatch | EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """States, actions and the constant targets Y of the squared error."""
        if isinstance(batch, EpisodeBatch):
            returns = discounted_returns(batch.rewards.cpu().numpy(), batch.lengths.cpu().numpy(), self.hparams.gamma)
            return batch.obs.long(), batch.actions, torch.as_tensor(returns, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            bootstrap = self.q[batch.next_obs.long()].max(dim=1).values  # (B,)
        return batch.obs.long(), batch.actions, batch.rewards + batch.discounts * bootstrap

    def _act(self, states: np.ndarray) -> np.ndarray:
        """Epsilon-greedy actions ``(N,)`` for states ``(N,)``; random among equally good actions."""
        q = self.q.detach().cpu().numpy()[states]  # (N, A)
        greedy = np.array([self._rng.choice(np.flatnonzero(row == row.max())) for row in q])
        explore = self._rng.random(len(states)) < self.epsilon
        return np.where(explore, self._rng.integers(q.shape[1], size=len(states)), greedy)

    def _eval_action(self, obs: np.ndarray) -> int:
        return int(self(torch.as_tensor([int(obs)], device=self.device))[0])

    def _action_names(self) -> list[str]:
        from rlgen.envs.jump_chain import ACTION_NAMES

        n = self.q.shape[1]
        return (
            list(ACTION_NAMES) if self.hparams.env_id.startswith("rlgen/JumpChain") and n == 2
            else [str(a) for a in range(n)]
        )


class _LastStep:
    """A replay memory that holds only the latest vector step: online Q-learning as replay of size one.

    ``sample`` returns that step's valid transitions with ``discounts = gamma * (1 - terminated)``.
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma
        self.batch: ReplayBatch | None = None

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None) -> None:
        keep = np.ones(len(actions), bool) if valid is None else np.asarray(valid)
        if keep.any():
            self.batch = ReplayBatch(
                obs=torch.as_tensor(np.asarray(obs)[keep]),
                actions=torch.as_tensor(np.asarray(actions)[keep], dtype=torch.long),
                rewards=torch.as_tensor(np.asarray(rewards)[keep], dtype=torch.float32),
                next_obs=torch.as_tensor(np.asarray(next_obs)[keep]),
                discounts=torch.as_tensor(self.gamma * (1.0 - np.asarray(terminated)[keep]), dtype=torch.float32),
            )

    def sample(self, batch_size: int) -> ReplayBatch:
        assert self.batch is not None, "collect a step before sampling"
        return self.batch
