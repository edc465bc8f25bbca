"""Tabular Q-learning on JumpChain, several seeds: how fast Q reaches the optimal Q of value iteration.

    python -m bench.qlearning                              # 5 seeds, td and mc (about a minute)
    python -m bench.qlearning --smoke --out-dir /tmp/x     # seconds

Trains ``TabularQLearning`` with the hyperparameters of ``configs/qlearning/jump_chain.yaml`` (and
the same module with Monte Carlo targets and a decaying epsilon) and measures, after every SGD
step, the max abs error between Q and Q* (value iteration on the known dynamics, gamma = 1).
Reports the env steps and episodes after which the error stays below ``--tol``, the final error
(all pairs, and the pairs the greedy policy takes), and whether the greedy policy is exactly
optimal (argmax Q in the optimal set in every non-terminal cell) and avoids both holes.
Writes ``<out-dir>/qlearning.json`` and ``<out-dir>/qlearning.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import yaml
from pytorch_lightning import Callback, Trainer, seed_everything

from bench._common import REPO, bench_parser, plt, save_figure, write_results
from rlgen.envs import JUMP_CHAIN_ID
from rlgen.envs.jump_chain import JumpChain, optimal_q
from rlgen.lightning_modules.qlearning import TabularQLearning

CONFIG = "configs/qlearning/jump_chain.yaml"
VARIANTS = {  # name -> overrides of the config's model arguments
    "td": {},
    "mc": {"target": "mc", "epsilon_decay_steps": 3000},
}


class QErrorCurve(Callback):
    """Records (env steps, episodes, max |Q - Q*|) after every training step."""

    def __init__(self, q_star: np.ndarray) -> None:
        self.q_star = q_star
        self.points: list[tuple[int, int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        error = float(np.abs(pl_module.q.detach().cpu().numpy() - self.q_star).max())
        self.points.append((pl_module.rollout.env_steps, pl_module.rollout.episodes, error))


def greedy_report(q: np.ndarray, q_star: np.ndarray, env: JumpChain) -> dict:
    """Is argmax Q optimal in every non-terminal cell, and which cells does the greedy policy visit?"""
    terminal = set(env.holes) | {env.n_cells - 1}
    exact = all(q_star[s, int(np.argmax(q[s]))] == q_star[s].max() for s in range(env.n_cells) if s not in terminal)
    s, _ = env.reset()
    path, done = [s], False
    while not done and len(path) <= env.n_cells:
        s, _, done, _, _ = env.step(int(np.argmax(q[s])))
        path.append(int(s))
    on_path = [(s, int(np.argmax(q[s]))) for s in path[:-1]]
    return {
        "greedy_exact": bool(exact),
        "greedy_path": path,
        "greedy_path_max_abs_error": float(max(abs(q[s, a] - q_star[s, a]) for s, a in on_path)),
        "avoids_holes": not set(env.holes) & set(path) and path[-1] == env.n_cells - 1,
    }


def train(model_args: dict, max_steps: int, seed: int, q_star: np.ndarray) -> dict:
    seed_everything(seed, verbose=False)
    module = TabularQLearning(**{**model_args, "seed": seed})
    curve = QErrorCurve(q_star)
    trainer = Trainer(max_steps=max_steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, limit_val_batches=0, callbacks=[curve])  # fmt: skip
    start = time.perf_counter()
    trainer.fit(module)
    wall = time.perf_counter() - start
    return {"seed": seed, "wall_s": round(wall, 2), "q": module.q.detach().cpu().numpy(), "curve": curve.points}


def settled(curve: list[tuple[int, int, float]], tol: float) -> tuple[int | None, int | None]:
    """(env steps, episodes) after which the error stays below ``tol``; None if it never does."""
    above = [i for i, (_, _, error) in enumerate(curve) if error >= tol]
    first = above[-1] + 1 if above else 0
    if first >= len(curve):
        return None, None
    return curve[first][0], curve[first][1]


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--tol", type=float, default=0.1, help="max abs error that counts as converged")
    parser.add_argument("--max-steps", type=int, default=None, help="env steps per run (default: the config's)")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 200 steps (seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = yaml.safe_load((REPO / CONFIG).read_text())
    model_args = config["model"]["init_args"]
    seeds = 1 if args.smoke else args.seeds
    max_steps = 200 if args.smoke else args.max_steps or config["trainer"]["max_steps"]
    q_star = optimal_q(JumpChain(), gamma=model_args["gamma"])
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    summary: dict = {"config": CONFIG, "tol": args.tol, "max_steps": max_steps, "smoke": args.smoke,
                     "q_star": q_star.tolist(), "variants": {}}  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, overrides), color in zip(VARIANTS.items(), ("tab:blue", "tab:orange"), strict=True):
        runs = []
        for seed in range(seeds):
            run = train({**model_args, **overrides}, max_steps, seed, q_star)
            steps, episodes = settled(run["curve"], args.tol)
            final_error = run["curve"][-1][2]
            report = greedy_report(run["q"], q_star, JumpChain())
            runs.append({"seed": seed, "steps_to_tol": steps, "episodes_to_tol": episodes,
                         "final_max_abs_error": final_error, "wall_s": run["wall_s"], **report,
                         "q": run["q"].round(4).tolist()})  # fmt: skip
            print(f"{name} seed {seed}: error < {args.tol} after {steps} env steps / {episodes} episodes, "
                  f"final error {final_error:.2e}, greedy exact {report['greedy_exact']}, "
                  f"path {report['greedy_path']}, {run['wall_s']} s", flush=True)  # fmt: skip
            x, y = np.array([p[0] for p in run["curve"]]), np.array([p[2] for p in run["curve"]])
            ax.semilogy(x, np.maximum(y, 1e-6), color=color, alpha=0.6, label=name if seed == 0 else None)
        converged = [r["steps_to_tol"] for r in runs if r["steps_to_tol"] is not None]
        episodes = [r["episodes_to_tol"] for r in runs if r["episodes_to_tol"] is not None]
        summary["variants"][name] = {
            "model_overrides": overrides,
            "seeds_converged": f"{len(converged)}/{seeds}",
            "median_steps_to_tol": float(np.median(converged)) if converged else None,
            "median_episodes_to_tol": float(np.median(episodes)) if episodes else None,
            "max_final_error": max(r["final_max_abs_error"] for r in runs),
            "max_greedy_path_error": max(r["greedy_path_max_abs_error"] for r in runs),
            "greedy_exact": f"{sum(r['greedy_exact'] for r in runs)}/{seeds}",
            "avoids_holes": f"{sum(r['avoids_holes'] for r in runs)}/{seeds}",
            "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
            "runs": runs,
        }  # fmt: skip
        v = summary["variants"][name]
        print(f"{name}: converged {v['seeds_converged']}, median {v['median_steps_to_tol']} env steps, "
              f"greedy-path error <= {v['max_greedy_path_error']:.2e}, greedy exact {v['greedy_exact']}, "
              f"avoids holes {v['avoids_holes']}", flush=True)
    summary["target"] = "Q converges to Q* (value iteration) and the greedy policy avoids both holes"
    write_results(out, "qlearning", summary)

    ax.axhline(args.tol, color="gray", linestyle="--", linewidth=1, label=f"tol {args.tol}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("max |Q - Q*|")
    ax.set_title(f"{JUMP_CHAIN_ID}: tabular Q-learning (td) vs Monte Carlo (mc), {seeds} seeds")
    ax.legend()
    save_figure(fig, out / "qlearning.png")
    return summary


if __name__ == "__main__":
    main()
