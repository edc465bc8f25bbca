"""Atari wrappers that Gymnasium does not ship: soft resets on life loss and FIRE on reset.

Gymnasium's ``AtariPreprocessing(terminal_on_life_loss=True)`` restarts the whole game after the
first lost life, so the agent would never see the later lives. The DQN paper ends the *training*
episode on a life loss but keeps playing the same game; :class:`EpisodicLife` does that.
"""

from __future__ import annotations

import gymnasium as gym


def _ale(env: gym.Env):
    return env.unwrapped.ale


class EpisodicLife(gym.Wrapper):
    """``terminated=True`` when a life is lost; ``reset`` then continues the same game (one NOOP step).

    The real game over still resets the emulator, so ``RecordEpisodeStatistics`` placed *inside*
    this wrapper reports whole-game scores while the learner sees one episode per life.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = _ale(self.env).lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed=None, options=None):
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:  # a life was lost, the game goes on: one NOOP step stands for the reset
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        self.game_over = False
        self.lives = _ale(self.env).lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE after every reset, for games that wait for it (Breakout launches the ball)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        assert meanings[1] == "FIRE", f"FireReset needs action 1 to be FIRE, the game has {meanings}"

    def reset(self, *, seed=None, options=None):
        self.env.reset(seed=seed, options=options)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            obs, info = self.env.reset(options=options)
        return obs, info


def needs_fire_reset(env: gym.Env) -> bool:
    """True when the game's action 1 is FIRE (Breakout, SpaceInvaders, Pong, ...)."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[1] == "FIRE"
