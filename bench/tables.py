"""The results tables and the configs' ``# Expected`` lines, generated from the benchmarks' results files: a
measured number lives in its ``bench/results/<name>.json`` alone, and every table and config header (which
``rlgen list`` prints) shows what this script makes of it. The README gets the summary (the figure and the
verdict of each learning result), docs/results.md the full learning table (target and detail), docs/speed.md the speed
table, and each family's page in docs/ the rows of its own algorithms.

    python -m bench.tables            # print the tables
    python -m bench.tables --write    # write them into their documents (between markers) and the configs

``tests/test_tables.py`` fails when a table or a config's ``# Expected`` paragraph is not what this script
makes of the committed JSON, so neither can drift from its results. Each row reads one results
file; the commands, curves and earlier runs behind a number are in the JSON and in the family's page in docs/.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from rlgen.cli.listing import paragraph_span

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
README = REPO / "README.md"
RESULTS_PAGE = REPO / "docs" / "results.md"
CONFIGS = REPO / "configs"


class Row(NamedTuple):
    """One result: what was measured, its results file, the target and the measured value (both read from the
    JSON), and whether the target was met (None: the benchmark reports a number without a target)."""

    what: str
    results: str  # bench/results/<results>.json
    target: Callable[[dict], str]
    measured: Callable[[dict], str]
    met: Callable[[dict], bool | None]
    headline: Callable[[dict], str] | None = None  # the README's figure; None: ``measured`` up to its first ";"


def _all(fraction: str) -> bool:
    """``"5/5"`` -> True, ``"4/5"`` -> False."""
    done, total = fraction.split("/")
    return done == total


def _seeds(d: dict, steps_key: str, unit: str) -> str:
    return (f"{d['seeds_solved']} seeds solved, median {d[steps_key]:,.0f} {unit}; {d['seeds_ending_solved']} end "
            f"solved; median {d['median_wall_s']:.0f} s a seed")


def _best_tested(d: dict) -> str:
    """The best-evaluated checkpoints' tests, if the results have them (``bench.sac_hopper``)."""
    best = d.get("best_ckpt_test_returns")
    if not best:
        return ""
    return f"best-evaluated checkpoint tested {', '.join(f'{r:,.0f}' for r in best)}; "


def _seed_list(d: dict) -> str:
    """``seeds 1, 2`` where the results name each run's seed, else ``N seed(s)``."""
    seeds = d.get("trained_seeds") or [None]
    if None in seeds:
        return f"{d['seeds']} seed(s)"
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}"


def _threads(d: dict) -> str:
    """`` on N torch thread(s)`` where every seed trained with the same count."""
    threads = set(d.get("training_threads") or [None])
    return f" on {threads.pop()} torch thread(s)" if len(threads) == 1 and None not in threads else ""


def _sac_speed(d: dict) -> str:
    """SAC's speed check, if the results have one: rlgen's gradient step against a plain PyTorch loop's."""
    if "speed" not in d:
        return ""
    speed = d["speed"]
    threads = f" on {speed['threads']} thread(s)" if "threads" in speed else ""
    ratios = speed.get("pair_ratios")  # each alternating pair's ratio: the check's own noise
    # the median pair ratio, as the check recorded it (checks since de2ad44)
    median = f", median {speed['median_pair_ratio']:.2f}x" if "median_pair_ratio" in speed else ""
    spread = f" (pairs {min(ratios):.2f}-{max(ratios):.2f}x{median})" if ratios else ""
    target = speed.get("target_ratio")  # the speed target is its own: the row's verdict is the learning target's
    verdict = (f", {'within' if speed['ratio_rlgen_over_plain'] <= target else 'not within'} its {target:g} target"
               if target else "")
    return (f"; speed check{threads}: a gradient step {speed['rlgen_ms_per_gradient_step']:.1f} ms, "
            f"{speed['ratio_rlgen_over_plain']:.2f}x a plain PyTorch loop's{spread}{verdict}")


def _sac_pendulum(d: dict) -> str:
    """SAC's Pendulum seeds (bench/sac.py): final evaluations, tests, wall time, speed check."""
    return (f"median final greedy return {d['median_final_eval']:.1f} over {len(d['final_evals'])} seeds "
            f"(min {d['min_final_eval']:.1f}) at {d['env_step_budget']:,.0f} env steps; last.ckpt tested "
            f"median {d['median_last_ckpt_test_return']:.1f}; median {d['median_wall_s']:.0f} s a seed" + _sac_speed(d))


def _sac_speed_brief(d: dict) -> str:
    """The README's word on SAC's speed target, which the row's verdict (the learning target's) does not cover."""
    speed = d["speed"]
    return f"; speed {speed['ratio_rlgen_over_plain']:.2f}x a plain loop's (target {speed['target_ratio']:g})"


def _anchors(d: dict) -> str:
    """The published numbers a result is compared with, as ``name value; name value``."""
    return "; ".join(f"{name} {value:g}" for name, value in d["anchors"].items())


def _budget_run(d: dict) -> str:
    """A PPO-family run of a whole env step budget (bench/ppo.py): every seed's final greedy return, last.ckpt
    tests, wall time (and the greedy evaluations' part of it, where recorded)."""
    evals = [s for s in d.get("eval_s", []) if s is not None]
    of_it = f" ({statistics.median(evals) / 60:.1f} min of it evaluating)" if evals else ""
    return (f"greedy return {d['median_final_eval']:,.0f} (median of {len(d['final_evals'])} seed(s): "
            f"{', '.join(f'{r:,.0f}' for r in d['final_evals'])}) after {d['env_step_budget']:,.0f} env steps, "
            f"last.ckpt tested {', '.join(f'{r:,.0f}' for r in d['last_ckpt_test_returns'])}; median "
            f"{d['median_wall_s'] / 60:.0f} min a seed{of_it}, {min(d['env_steps_per_s']):,.0f} env steps/s at "
            f"least ({_anchors(d)})")


def _gan(d: dict) -> str:
    return f"IS {d['is']:.2f}, FID {d['fid']:.2f} after {d['epochs_trained']:g} epochs"


def _dqn_atari(d: dict) -> str:
    """A DQN Atari run (bench/dqn_atari.py). Its game's two environments are in the JSON; Pong's runs from before
    the script served every game lack them."""
    sticky = d.get("final_with_sticky_actions")  # an agent trained without sticky actions, scored with them
    plain = d.get("final_without_sticky_actions")  # and the other way round
    sticky_env, plain_env = d.get("sticky_env_id", "ALE/Pong-v5"), d.get("plain_env_id", "PongNoFrameskip-v4")
    return (f"{d['final']['mean']:+.1f} over {d['final']['games']} whole games after {d['agent_steps']:,.0f} agent "
            f"steps, {d['gradient_steps']:,.0f} gradient steps, {d['training_wall_minutes']:.0f} min; best "
            f"evaluation {d['best_evaluation'][2]:+.1f} at {d['best_evaluation'][0]:,.0f} agent steps, {d['env_id']}"
            + (f"; with sticky actions ({sticky_env}) {sticky['mean']:+.1f} over {sticky['games']} games"
               if sticky else "")
            + (f"; without sticky actions ({plain_env}) {plain['mean']:+.1f} over {plain['games']} games"
               if plain else ""))


def _atari_row(what: str, results: str) -> Row:
    """A row of an Atari game's results file (bench/dqn_atari.py): its own target, figures and verdict."""
    return Row(what, results, lambda d: d["target"], _dqn_atari, lambda d: d["met"])



def _hopping(d: dict) -> int | None:
    """How many seeds' tested Hopper agents hop: earn over 1.5 a step, where standing still earns the alive bonus,
    1 a step (an agent that stands for the whole 1,000 steps scores about 1,000). None: lengths not recorded."""
    per_step = [r["last_ckpt_test_return"] / r["last_ckpt_test_episode_length"] for r in d["runs"]
                if r.get("last_ckpt_test_episode_length")]
    return sum(p > 1.5 for p in per_step) if len(per_step) == len(d["runs"]) else None


def _sac_hopper(d: dict) -> str:
    """A scored set of SAC Hopper seeds (bench/sac_hopper.py): final evaluations, tests, wall time, speed check."""
    return (f"greedy return {', '.join(f'{r:,.0f}' for r in d['final_evals'])} at "
            f"{', '.join(f'{s:,.0f}' for s in d['final_eval_env_steps'])} env steps ({_seed_list(d)}); "
            f"last.ckpt tested {', '.join(f'{r:,.0f}' for r in d['last_ckpt_test_returns'])}; "
            + _best_tested(d)
            + f"{', '.join(f'{m:.0f}' for m in d['wall_minutes'])} min a seed"
            + _threads(d)
            + ("" if d["complete"] else ", stopped before the budget")
            + f" ({_anchors(d)})" + _sac_speed(d))


def _minutes_range(seconds: list[float]) -> str:
    """``18`` or ``17-23``: the wall minutes of the seeds."""
    low, high = (f"{x / 60:.0f}" for x in (min(seconds), max(seconds)))
    return low if low == high else f"{low}-{high}"


def _a2c_hopper(d: dict) -> str:
    hopping = _hopping(d)
    return (f"greedy return {d['median_final_eval']:,.0f} (median of {len(d['final_evals'])} seed(s)), "
            f"{d['env_step_budget']:,.0f} env steps; "
            + (f"{hopping} of {len(d['runs'])} seeds hop (> 1.5 reward a step; standing earns 1)"
               if hopping is not None else "the policy stands still, it does not hop"))


LEARNING = [
    Row("Tabular Q-learning, JumpChain (TD target)", "qlearning", lambda d: d["target"],
        lambda d: (f"{d['variants']['td']['seeds_converged']} seeds converge to Q* (median "
                   f"{d['variants']['td']['median_steps_to_tol']:,.0f} steps), greedy path exact "
                   f"{d['variants']['td']['greedy_exact']}; Monte Carlo target: "
                   f"{d['variants']['mc']['seeds_converged']} converge"),
        lambda d: _all(d["variants"]["td"]["seeds_converged"]) and _all(d["variants"]["td"]["avoids_holes"])),
    Row("DQN, CartPole-v1", "dqn_cartpole", lambda d: d["target"],
        lambda d: _seeds(d, "median_env_steps_to_solve", "env steps"),
        lambda d: _all(d["seeds_solved"]) and _all(d["seeds_ending_solved"])),
    Row("REINFORCE, CartPole-v1", "reinforce_cartpole", lambda d: d["target"],
        lambda d: _seeds(d, "median_episodes_to_solve", "episodes"),
        lambda d: _all(d["seeds_solved"]) and _all(d["seeds_ending_solved"])),
    Row("PPO, CartPole-v1", "ppo_cartpole", lambda d: d["target"],
        lambda d: _seeds(d, "median_env_steps_to_solve", "env steps"),
        lambda d: (_all(d["seeds_solved"]) and _all(d["seeds_ending_solved"])
                   and d["max_env_steps_to_solve"] <= 100_000)),
    Row("PPO, Hopper-v5", "ppo_hopper", lambda d: d["target"], _budget_run,
        lambda d: (len(d["final_evals"]) >= 3 and d["median_final_eval"] >= 2400 and min(d["final_evals"]) >= 1800
                   and max(d["wall_s"]) <= 900),
        lambda d: (f"median greedy return {d['median_final_eval']:,.0f} of {len(d['final_evals'])} seed(s) (min "
                   f"{min(d['final_evals']):,.0f}) at {d['env_step_budget']:,.0f} env steps; "
                   f"{_minutes_range(d['wall_s'])} min a seed")),
    Row("A2C, Hopper-v5, the removed config (commit 3621711)", "a2c_hopper", lambda d: d["target"], _budget_run,
        lambda d: (d["median_final_eval"] > d["anchors"]["RL Zoo A2C Hopper-v3, 1M steps"]
                   and _hopping(d) == len(d["runs"])), _a2c_hopper),
    Row("A2C, Pendulum-v1", "a2c_pendulum", lambda d: d["target"], _budget_run,
        lambda d: d["median_final_eval"] > d["anchors"]["RL Zoo A2C Pendulum-v1 (gSDE), 1M steps"],
        lambda d: (f"greedy return {d['median_final_eval']:,.0f} (median of {len(d['final_evals'])} seeds, min "
                   f"{min(d['final_evals']):,.0f}), {d['env_step_budget']:,.0f} env steps")),
    Row("SAC, Pendulum-v1", "sac_pendulum", lambda d: d["target"], _sac_pendulum, lambda d: d["met"],
        lambda d: _sac_pendulum(d).split("; ")[0] + _sac_speed_brief(d)),
    Row("SAC, Hopper-v5", "sac_hopper", lambda d: d["target"], _sac_hopper, lambda d: d["met"],
        lambda d: (f"median greedy return {d['median_final_eval']:,.0f} of {d['seeds']} seed(s) (min "
                   f"{min(d['final_evals']):,.0f}) at {max(d['final_eval_env_steps']):,.0f} env steps; "
                   f"{_minutes_range([60 * m for m in d['wall_minutes']])} min a seed" + _threads(d)
                   + _sac_speed_brief(d))),
    Row("SAC, Hopper-v5, the previous config (300,000 env steps, a gradient step a phase; commit eadbe08)",
        "sac_hopper_300k", lambda d: d["target"], _sac_hopper, lambda d: d["met"]),
    Row("REINFORCE, Gaussian policy, InvertedPendulum-v5", "reinforce_inverted_pendulum", lambda d: d["target"],
        lambda d: (f"{d['seeds_at_target']} seeds reach 1000 (env steps: "
                   f"{', '.join(f'{s:,.0f}' if s else '-' for s in d['env_steps_to_target'])}); last.ckpt tested "
                   f"{', '.join(f'{r:.0f}' for r in d['last_ckpt_test_returns'])}; "
                   f"{max(d['wall_s']) / 60:.1f} min at most a seed"),
        lambda d: (_all(d["seeds_at_target"]) and _all(d["seeds_last_ckpt_at_floor"])
                   and max(d["wall_s"]) <= 600)),
    _atari_row("DQN, Pong, the recipe with NoisyNet layers", "dqn_pong"),
    _atari_row("DQN, Breakout, the recipe with NoisyNet layers", "dqn_breakout"),
    _atari_row("DQN, Boxing, the recipe with NoisyNet layers", "dqn_boxing"),
    _atari_row("QR-DQN, Breakout, the DQN recipe with 32 quantiles", "qrdqn_breakout"),
    _atari_row("QR-DQN, Boxing, the DQN recipe with 32 quantiles", "qrdqn_boxing"),
    _atari_row("QR-DQN, Breakout, with the DQN recipe's NoisyNet layers (a probe)", "qrdqn_breakout_noisy"),
    _atari_row("DQN, Breakout, the same recipe, training seed 1", "dqn_breakout_seed1"),
    _atari_row("DQN, Breakout, training seed 1 at the record's code", "dqn_breakout_seed1_shuffled"),
    _atari_row("DQN, Breakout, 6 gradient steps a phase (a probe, stopped early)", "dqn_breakout_replay6"),
    _atari_row("DQN, Breakout, Tianshou's settings (a probe: no PER or dueling head)", "dqn_breakout_tianshou_plain"),
    _atari_row("DQN, Breakout, epsilon 1 -> 0.05 over 1M agent steps (a probe)", "dqn_breakout_eps1m"),
    _atari_row("DQN, Breakout, the recipe before its NoisyNet layers (the previous record)", "dqn_breakout_plain"),
    _atari_row("DQN, Boxing, the recipe before its NoisyNet layers (the previous record)", "dqn_boxing_plain"),
    _atari_row("DQN, Pong, the recipe before its NoisyNet layers (the previous record)", "dqn_pong_plain"),
    _atari_row("DQN, Pong, the same config trained with sticky actions (ALE/Pong-v5)", "dqn_pong_sticky"),
    _atari_row("DQN, Pong, the previous config (pixels scaled to [0, 1], epsilon over 500k)", "dqn_pong_scaled_pixels"),
    _atari_row("DQN, Pong, Tianshou's settings with scaled pixels (no PER, dueling or sticky actions)",
               "dqn_pong_tianshou_plain"),
    Row("REINFORCE, Pong from pixel differences", "reinforce_pong", lambda d: d["target"],
        lambda d: (f"-10 reached after {d['reached_target_at']['wall_minutes']:.0f} min "
                   f"({d['reached_target_at']['agent_steps']:,.0f} agent steps); greedy "
                   f"{d['final_greedy']['mean']:+.1f} over {d['final_greedy']['games']} whole games"),
        lambda d: d["met"]),
    Row("VAE, binarized MNIST", "vae", lambda d: f"IWAE NLL <= {d['target_nll']:g} nats",
        lambda d: (f"IWAE NLL {d['test_nll_iwae']:.2f} nats (k = {d['iwae_k']}), test neg. ELBO "
                   f"{d['test_neg_elbo']:.2f}, {d['epochs_reached']} epochs"),
        lambda d: d["passed"]),
    Row("AE and denoising AE, MNIST", "autoencoders", lambda d: "report test MSE (clean / 25% / 50% masked)",
        lambda d: "; ".join(f"{name} " + " / ".join(f"{v:.4f}" for v in m["test_recon_mse"].values())
                            for name, m in d["models"].items()),
        lambda d: None, lambda d: f"AE test MSE {d['models']['AE']['test_recon_mse']['clean']:.4f}; the DAEs' "
                                  "clean / masked in the full table"),
    Row("MNIST classifier (FID/IS features)", "classifier", lambda d: f"test accuracy >= {d['target_test_acc']:.0%}",
        lambda d: f"{d['test_acc']:.2%} after {d['epochs']} epochs", lambda d: d["passed"]),
    Row("GAN (the paper's MLPs), MNIST", "gan", lambda d: "report IS and FID", _gan, lambda d: None),
    Row("DCGAN, MNIST", "dcgan", lambda d: f"IS >= {d['target_is']:g}", _gan, lambda d: d["passed"]),
    Row("DCGAN on k-means clusters, MNIST", "dcgan_clusters", lambda d: f"IS >= {d['target_is']:g}", _gan,
        lambda d: d["passed"]),
    Row("Text-conditional GAN, MNIST", "textgan", lambda d: f">= {d['target_prompt_acc']:.0%} of samples show the "
        "prompted digit", lambda d: f"{d['prompt_acc']:.1%} after {d['epochs_trained']:g} epochs",
        lambda d: d["passed"]),
    Row("CycleGAN, MNIST pair", "cyclegan",
        lambda d: f"label kept >= {d['target_label_preservation']:.0%} both ways",
        lambda d: (f"{d['label_preservation_a2b']:.1%} / {d['label_preservation_b2a']:.1%}, cycle L1 "
                   f"{d['cycle_l1_a']:.3f} / {d['cycle_l1_b']:.3f}"),
        lambda d: d["passed"]),
]

SPEED = [
    Row("Framework overhead: a VAE epoch, rlgen / plain PyTorch", "overhead",
        lambda d: f"wall ratio <= {d['target_ratio']:g}",
        lambda d: f"{d['median_ratio']:.3f} ({d['median_rlgen_s']:.1f} s vs {d['median_plain_s']:.1f} s)",
        lambda d: d["passed"]),
    Row("DQN CartPole env steps/s, rlgen / plain DQN", "rl_throughput", lambda d: "ratio >= 1",
        lambda d: (f"{d['tasks']['cartpole']['ratio_rlgen_over_plain']:.2f} "
                   f"({d['tasks']['cartpole']['rlgen_median']:.0f} vs {d['tasks']['cartpole']['plain_median']:.0f})"),
        lambda d: d["tasks"]["cartpole"]["ratio_rlgen_over_plain"] >= 1.0),
    Row("DQN Pong env steps/s, 8 envs / plain single env", "rl_throughput_pong_8envs", lambda d: "ratio >= 1.5",
        lambda d: (f"{d['tasks']['pong_8envs']['ratio_rlgen_over_plain']:.2f} "
                   f"({d['tasks']['pong_8envs']['rlgen_median']:.0f} vs "
                   f"{d['tasks']['pong_8envs']['plain_median']:.0f})"),
        lambda d: d["tasks"]["pong_8envs"]["ratio_rlgen_over_plain"] >= 1.5),
    Row("Replay memory per Atari transition", "replay_memory",
        lambda d: f"<= {d['target_bytes_per_transition']:,.0f} bytes",
        lambda d: f"{d['bytes_per_slot']:,.0f} bytes ({d['bytes_per_slot'] / d['frame_bytes']:.3f} frames)",
        lambda d: d["meets_target"]),
    Row("DDP scaling, VAE samples/s, 2 CPU processes / 1", "scaling", lambda d: "report",
        lambda d: f"{d['ratio']:.2f} ({d['samples_per_s_2']:,.0f} vs {d['samples_per_s_1']:,.0f})", lambda d: None),
    Row("Default job beside one busy process, busy / quiet", "contention", lambda d: d["target"],
        lambda d: (f"{d['settings']['rlgen default']['ratio_busy_over_quiet']:.2f} "
                   f"({d['settings']['rlgen default']['median_quiet_s']:.0f} s quiet)"),
        lambda d: d["met"]),
]

DOCS = REPO / "docs"
# Each family's page shows the learning rows of its results files, in LEARNING's order.
FAMILIES = {
    "qlearning": ("qlearning",),
    "rl": ("dqn_cartpole", "reinforce_cartpole", "dqn_pong", "dqn_breakout", "dqn_boxing", "dqn_breakout_seed1",
           "dqn_breakout_replay6", "dqn_breakout_tianshou_plain", "dqn_pong_sticky", "dqn_pong_scaled_pixels",
           "dqn_pong_tianshou_plain", "reinforce_pong"),  # Breakout's other probes and runs: results.md
    "actor_critic": ("reinforce_inverted_pendulum", "ppo_cartpole", "ppo_hopper", "a2c_hopper", "a2c_pendulum",
                     "sac_pendulum", "sac_hopper"),
    "autoencoders": ("vae", "autoencoders"),
    "gans": ("classifier", "gan", "dcgan", "dcgan_clusters", "textgan"),
    "cyclegan": ("cyclegan",),
    "qrdqn": ("qrdqn_breakout", "qrdqn_boxing", "qrdqn_breakout_noisy"),
}


def _family(name: str) -> list[Row]:
    return [row for row in LEARNING if row.results in FAMILIES[name]]


# Earlier configs of a result, probes of other settings and further training seeds, kept in the full tables
# (docs/results.md, the family page), not in the README's summary.
SUPERSEDED = ("dqn_pong_scaled_pixels", "dqn_pong_tianshou_plain", "dqn_breakout_replay6",
              "dqn_breakout_tianshou_plain", "dqn_breakout_eps1m",
              "dqn_breakout_plain", "dqn_boxing_plain", "dqn_pong_plain", "dqn_breakout_seed1", "qrdqn_breakout_noisy",
              "dqn_breakout_seed1_shuffled",
              "a2c_hopper", "sac_hopper_300k", "dqn_pong_sticky")

TABLES: dict[str, tuple[list[Row], str]] = {  # name -> (rows, style)
    "summary": ([row for row in LEARNING if row.results not in SUPERSEDED], "summary"),
    "learning": (LEARNING, "full"),
    "speed": (SPEED, "full"),
    **{f"{name} results": (_family(name), "full") for name in FAMILIES},
}
# where each table goes; a page in docs/ links to the results files one folder up
DOCUMENTS = {README: ("summary",), RESULTS_PAGE: ("learning",), DOCS / "speed.md": ("speed",),
             DOCS / "qlearning.md": ("qlearning results",), DOCS / "rl.md": ("rl results",),
             DOCS / "autoencoders.md": ("autoencoders results",), DOCS / "gans.md": ("gans results",),
             DOCS / "cyclegan.md": ("cyclegan results",), DOCS / "actor_critic.md": ("actor_critic results",),
             DOCS / "qrdqn.md": ("qrdqn results",)}
MET = {True: "**met**", False: "not met", None: "-"}

# The configs whose "# Expected" paragraph states a learning row's result: configs/<key> -> bench/results/<value>.json.
EXPECTED = {
    "qlearning/jump_chain.yaml": "qlearning",
    "dqn/cartpole.yaml": "dqn_cartpole",
    "dqn/pong.yaml": "dqn_pong",
    "dqn/breakout.yaml": "dqn_breakout",
    "dqn/boxing.yaml": "dqn_boxing",
    "qrdqn/breakout.yaml": "qrdqn_breakout",
    "qrdqn/boxing.yaml": "qrdqn_boxing",
    "reinforce/cartpole.yaml": "reinforce_cartpole",
    "ppo/cartpole.yaml": "ppo_cartpole",
    "ppo/hopper.yaml": "ppo_hopper",
    "a2c/pendulum.yaml": "a2c_pendulum",
    "reinforce/inverted_pendulum.yaml": "reinforce_inverted_pendulum",
    "sac/pendulum.yaml": "sac_pendulum",
    "sac/hopper.yaml": "sac_hopper",
    "reinforce/pong.yaml": "reinforce_pong",
    "vae/mnist.yaml": "vae",
    "ae/mnist.yaml": "autoencoders",
    "dae/mnist.yaml": "autoencoders",
    "classifier/mnist.yaml": "classifier",
    "gan/mnist.yaml": "gan",
    "dcgan/mnist.yaml": "dcgan",
    "dcgan/mnist_clusters.yaml": "dcgan_clusters",
    "textgan/mnist.yaml": "textgan",
    "cyclegan/mnist.yaml": "cyclegan",
}
HEADER_WIDTH = 110


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def headline(row: Row, data: dict) -> str:
    """The figure the README shows for ``row``: its ``headline``, or ``measured`` up to the first ``;``."""
    return row.headline(data) if row.headline else row.measured(data).split("; ")[0]


def table(rows: list[Row], results: Path = RESULTS, style: str = "full", link_prefix: str = "") -> str:
    """The markdown table of ``rows``, each read from ``results/<row.results>.json``: ``full`` (what, target,
    measured, met, results file) or ``summary`` (what, the headline figure, met, results file)."""
    if style == "summary":
        lines = ["| what | measured | target met | results |", "| --- | --- | --- | --- |"]
    else:
        lines = ["| what | target | measured | met | results |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        path = results / f"{row.results}.json"
        link = f"[{row.results}.json]({link_prefix}bench/results/{row.results}.json)"
        if not path.exists():
            missing = (row.what, "not measured yet", "-", f"`{row.results}.json`") if style == "summary" else (
                row.what, "-", "not measured yet", "-", f"`{row.results}.json`")
            lines.append("| " + " | ".join(missing) + " |")
            continue
        data: dict[str, Any] = json.loads(path.read_text())
        if style == "summary":
            cells = (row.what, headline(row, data), MET[row.met(data)], link)
        else:
            cells = (row.what, row.target(data), row.measured(data), MET[row.met(data)], link)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def expected(results: str, results_dir: Path = RESULTS) -> str:
    """The text of a config's ``# Expected`` paragraph: the target and the measured result of its row."""
    row = next(r for r in LEARNING if r.results == results)
    path = results_dir / f"{results}.json"
    if not path.exists():
        return f"not measured yet (bench/results/{results}.json)."
    data = json.loads(path.read_text())
    met = {True: "met; ", False: "not met; ", None: ""}[row.met(data)]
    return f"{row.target(data)}; measured: {row.measured(data)} ({met}bench/results/{results}.json)."


def header_lines(text: str) -> list[str]:
    """``text`` as a config header paragraph: ``# Expected: ...`` and indented ``#   `` continuation lines."""
    return textwrap.wrap(f"Expected: {text}", HEADER_WIDTH - 2, initial_indent="# ", subsequent_indent="#   ",
                         break_on_hyphens=False)


def render_config(config: str, results: str, results_dir: Path = RESULTS) -> str:
    """``config`` (a YAML file's text) with its ``# Expected`` paragraph made from ``results``'s JSON. The paragraph
    is the ``# Expected`` line and the continuation lines below it (``#   ``, not a command), as ``rlgen list``
    reads it."""
    lines = config.splitlines(keepends=True)
    span = paragraph_span(lines, "Expected")
    if span is None:
        raise SystemExit(f"a config of bench/results/{results}.json has no '# Expected' header line")
    start, end = span
    new = [line + "\n" for line in header_lines(expected(results, results_dir))]
    return "".join(lines[:start] + new + lines[end:])


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- {name} table: generated by python -m bench.tables --write -->", f"<!-- end of {name} table -->")


def render(document: Path, text: str | None = None, results: Path = RESULTS) -> str:
    """``document``'s text (or ``text``) with each of its tables, between their markers, replaced by the one
    made from the results files."""
    text = document.read_text() if text is None else text
    for name in DOCUMENTS[document]:
        begin, end = markers(name)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{document.name} has no {name} table markers: {begin} ... {end}")
        rows, style = TABLES[name]
        made = table(rows, results, style, "../" if document.parent == DOCS else "")
        text = pattern.sub(lambda _, made=made, b=begin, e=end: f"{b}\n{made}\n{e}", text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="write the tables into their documents and the Expected lines into the configs")
    args = parser.parse_args(argv)
    if args.write:
        for document in DOCUMENTS:
            document.write_text(render(document))
        for config, results in EXPECTED.items():
            path = CONFIGS / config
            path.write_text(render_config(path.read_text(), results))
        print(f"wrote the tables into {', '.join(d.name for d in DOCUMENTS)} and the Expected lines into "
              f"{len(EXPECTED)} configs")
    else:
        for name, (rows, style) in TABLES.items():
            print(f"{name}:\n{table(rows, style=style)}\n")


if __name__ == "__main__":
    main()
