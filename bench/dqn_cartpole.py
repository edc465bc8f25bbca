"""DQN on CartPole-v1, several seeds: environment steps until solved, and the agent a run ends with.

    python -m bench.dqn_cartpole                              # 5 seeds of the default job
    python -m bench.dqn_cartpole --smoke --out-dir /tmp/x     # seconds

Runs ``configs/dqn/cartpole.yaml`` as it is for each seed: the greedy policy plays 20 evaluation
episodes every 2,560 env steps, and the config's ``EarlyStopping`` ends the run at the first
evaluation whose mean exceeds 475 ("solved"). Then ``rlgen test`` plays 20 fresh episodes with the
run's ``last.ckpt``, as a user does next. Writes ``<out-dir>/dqn_cartpole.json`` (steps to solve,
final evaluation, test return of last.ckpt, wall times, curves) and ``<out-dir>/dqn_cartpole.png``
(greedy evaluation return against env steps: every seed, the median and the min-max band).
Targets: solved within 50,000 env steps (issue 3) and a final evaluation >= 475 (issue 16), 5/5 seeds.
Extra arguments go to rlgen, e.g. ``--model.double_dqn=true``.
"""

from __future__ import annotations

from bench._rl import cartpole_bench

SMOKE = ["--model.warm_start_steps=200", "--trainer.max_steps=100", "--trainer.val_check_interval=1",
         "--model.eval_episodes=2", "--model.test_episodes=2"]  # 1 seed, seconds


def main(argv: list[str] | None = None) -> dict:
    return cartpole_bench(argv, __doc__, "dqn_cartpole", "configs/dqn/cartpole.yaml", unit="env_steps", budget=50_000,
                          smoke=SMOKE)


if __name__ == "__main__":
    main()
