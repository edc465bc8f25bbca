"""Atari wrappers that Gymnasium does not ship: soft resets on life loss, FIRE on reset, whole games.

Gymnasium's ``AtariPreprocessing(terminal_on_life_loss=True)`` restarts the whole game after the
first lost life, so the agent would never see the later lives. The DQN paper ends the *training*
episode on a life loss but keeps playing the same game; :class:`EpisodicLife` does that.
"""

from __future__ import annotations

import gymnasium as gym


def _ale(env: gym.Env):
    return env.unwrapped.ale


class EpisodicLife(gym.Wrapper):
    """``terminated=True`` when a life is lost; the ``reset`` after it continues the same game (one NOOP step).

    Any other reset (after the game over, a time limit, or an episode left unfinished) resets the emulator, so
    ``RecordEpisodeStatistics`` placed *inside* this wrapper reports whole-game scores while the learner sees
    one episode per life.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.life_lost = False  # the last step lost a life and the game goes on

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = _ale(self.env).lives()
        self.life_lost = 0 < lives < self.lives and not (terminated or truncated)
        self.lives = lives
        return obs, reward, terminated or self.life_lost, truncated, info

    def reset(self, *, seed=None, options=None):
        if self.life_lost and seed is None:  # the game goes on: one NOOP step stands for the reset
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        else:
            obs, info = self.env.reset(seed=seed, options=options)
        self.life_lost = False
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


class WholeGame(gym.Wrapper):
    """Play through the learner's episode ends inside a game (:class:`EpisodicLife`): an episode of this
    env is a whole game of all lives. After a lost life the game goes on through ``reset`` (a NOOP, then
    FIRE where the game needs it); evaluation plays it when it records a video."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated and self.env.get_wrapper_attr("life_lost"):
            obs, info = self.env.reset()
            terminated = False
        return obs, reward, terminated, truncated, info


def needs_fire_reset(env: gym.Env) -> bool:
    """True when the game's action 1 is FIRE (Breakout, SpaceInvaders, Pong, ...)."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[1] == "FIRE"
