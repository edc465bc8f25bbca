"""REINFORCE on CartPole-v1, several seeds: episodes until solved, and the agent a run ends with.

    python -m bench.reinforce_cartpole                       # 5 seeds of the default job (a few minutes)
    python -m bench.reinforce_cartpole --smoke --out-dir /tmp/x  # seconds

Runs ``configs/reinforce/cartpole.yaml`` as it is for each seed: the greedy policy plays 20
evaluation episodes every 25 training episodes, and the config's ``EarlyStopping`` ends the run at
the first evaluation whose mean exceeds 475 ("solved"). Then ``rlgen test`` plays 20 fresh episodes
with the run's ``last.ckpt``, as a user does next. Writes ``<out-dir>/reinforce_cartpole.json`` and
``<out-dir>/reinforce_cartpole.png`` (greedy evaluation return against training episodes: every
seed, the median and the min-max band). Targets: solved within 500 episodes (issue 3) and a final
evaluation >= 475 (issue 16), 5/5 seeds.
"""

from __future__ import annotations

from bench._rl import cartpole_bench

SMOKE = ["--trainer.max_steps=6", "--trainer.val_check_interval=3", "--model.eval_episodes=2",
         "--model.test_episodes=2"]  # 1 seed, seconds


def main(argv: list[str] | None = None) -> dict:
    return cartpole_bench(argv, __doc__, "reinforce_cartpole", "configs/reinforce/cartpole.yaml",
                          unit="episodes", budget=500, smoke=SMOKE)


if __name__ == "__main__":
    main()
