"""JumpChain: the lecture's tiny world for tabular Q-learning, registered as ``rlgen/JumpChain-v0``.

::

    cell:    0   1   2   3   4   5   6   7   8   9
             S           H           H           G

Start in cell 0. Action 0 = R moves one cell right, action 1 = JR jumps two cells right.
Landing in a hole (3 or 6) gives -10 and ends the episode, reaching the goal (9) gives +10 and ends
it, jumping past the goal (JR from 8) gives -10 and ends it (the agent stays in 8); every other
move gives ``step_reward`` (default 0). Each move goes right, so an episode lasts at most 9 steps.
With ``step_reward=0`` and gamma = 1 the optimal Q values are all +10 or -10.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

RIGHT, JUMP = 0, 1
ACTION_NAMES = ("R", "JR")


class JumpChain(gym.Env):
    """Ten cells in a row, two holes, one goal. Observation: the cell index, ``Discrete(n_cells)``.

    Args:
        n_cells: length of the chain; the goal is the last cell.
        holes: cells that end the episode with ``hole_reward``.
        goal_reward: reward for reaching the last cell.
        hole_reward: reward for falling into a hole or jumping past the goal.
        step_reward: reward of every other move.
        render_mode: ``"ansi"`` renders the chain as a line of text.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        n_cells: int = 10,
        holes: tuple[int, ...] = (3, 6),
        goal_reward: float = 10.0,
        hole_reward: float = -10.0,
        step_reward: float = 0.0,
        render_mode: str | None = None,
    ):
        assert n_cells >= 3, f"JumpChain needs at least 3 cells, got {n_cells}"
        assert all(0 < h < n_cells - 1 for h in holes), f"holes {holes} must lie strictly between start and goal"
        self.n_cells, self.holes = n_cells, tuple(holes)
        self.goal_reward, self.hole_reward, self.step_reward = goal_reward, hole_reward, step_reward
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(n_cells)
        self.action_space = gym.spaces.Discrete(2)
        self.cell = 0

    def step(self, action):
        assert self.action_space.contains(action), f"JumpChain actions are 0 (R) and 1 (JR), got {action!r}"
        target = self.cell + (1 if int(action) == RIGHT else 2)
        goal = self.n_cells - 1
        if target > goal:  # jumped past the goal: stays in place, episode over
            reward, terminated = self.hole_reward, True
        elif target == goal:
            self.cell, reward, terminated = target, self.goal_reward, True
        elif target in self.holes:
            self.cell, reward, terminated = target, self.hole_reward, True
        else:
            self.cell, reward, terminated = target, self.step_reward, False
        return self.cell, float(reward), terminated, False, {}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 0
        return self.cell, {}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        marks = ["H" if c in self.holes else "G" if c == self.n_cells - 1 else "." for c in range(self.n_cells)]
        marks[self.cell] = "A"
        return " ".join(marks)


def optimal_q(env: JumpChain, gamma: float = 1.0, iterations: int = 100) -> np.ndarray:
    """Q* (n_cells, 2) by value iteration on the known dynamics; terminal cells keep Q = 0."""
    q = np.zeros((env.n_cells, 2))
    terminal = set(env.holes) | {env.n_cells - 1}
    for _ in range(iterations):
        new = np.zeros_like(q)
        for s in range(env.n_cells):
            if s in terminal:
                continue
            for a in (RIGHT, JUMP):
                env.cell = s
                s2, r, done, _, _ = env.step(a)
                new[s, a] = r + (0.0 if done else gamma * q[s2].max())
        q = new
    env.cell = 0
    return q
