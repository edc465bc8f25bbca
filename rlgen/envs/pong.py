"""Karpathy's "Pong from Pixels" preprocessing for policy gradients.

A single frame does not show where the ball is going; the difference of two consecutive
preprocessed frames does (the lecture: "the state must consider two consecutive frames").
See http://karpathy.github.io/2016/05/31/rl/.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

PONG_BACKGROUND = (144, 109)  # the two background colours of the red channel


def preprocess_pong_frame(frame: np.ndarray) -> np.ndarray:
    """(210, 160, 3) uint8 RGB frame -> (80, 80) float32 in {0, 1}: paddles and ball are 1.

    Crops the score board and borders (rows 35..194), keeps every second pixel of the red channel,
    erases the background and binarizes.
    """
    assert frame.shape == (210, 160, 3), f"expected a (210, 160, 3) Pong frame, got {frame.shape}"
    return preprocess_pong_frames(frame[None])[0]


def preprocess_pong_frames(frames: np.ndarray) -> np.ndarray:
    """:func:`preprocess_pong_frame` for a batch: (N, 210, 160, 3) uint8 -> (N, 80, 80) float32."""
    x = frames[:, 35:195:2, ::2, 0]  # (N, 80, 80)
    x = (x != PONG_BACKGROUND[0]) & (x != PONG_BACKGROUND[1]) & (x != 0)
    return x.astype(np.float32)


class PongPixels(gym.Wrapper):
    """Observation = flattened difference of the last two preprocessed frames, float32 (6400,) in {-1, 0, 1}.

    The first observation after a reset is all zeros (there is no previous frame yet), as in
    Karpathy's script.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(80 * 80,), dtype=np.float32)
        self._prev: np.ndarray | None = None

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        return self._diff(frame), reward, terminated, truncated, info

    def reset(self, *, seed=None, options=None):
        frame, info = self.env.reset(seed=seed, options=options)
        self._prev = None
        return self._diff(frame), info

    def _diff(self, frame: np.ndarray) -> np.ndarray:
        cur = preprocess_pong_frame(frame)
        diff = cur - self._prev if self._prev is not None else np.zeros_like(cur)
        self._prev = cur
        return diff.reshape(-1)  # (6400,)
