"""The README's results tables are generated from the committed results files (bench/tables.py)."""

from __future__ import annotations

import json
import shutil

from bench import tables


def test_readme_tables_are_what_the_results_files_say():
    readme = tables.README.read_text()
    assert tables.render(readme) == readme, "a README table differs from its JSON: python -m bench.tables --write"


def test_a_changed_number_changes_the_table_and_a_missing_file_says_so(tmp_path):
    shutil.copy(tables.RESULTS / "dqn_cartpole.json", tmp_path)
    saved = json.loads((tmp_path / "dqn_cartpole.json").read_text())
    saved.update(median_env_steps_to_solve=12345, seeds_solved="4/5")
    (tmp_path / "dqn_cartpole.json").write_text(json.dumps(saved))
    rows = {line.split(" | ")[0].strip("| "): line for line in tables.table(tables.LEARNING, tmp_path).splitlines()}
    assert "4/5 seeds solved, median 12,345 env steps" in rows["DQN, CartPole-v1"]
    assert "| not met |" in rows["DQN, CartPole-v1"], "4 of 5 seeds solved: the target is not met"
    assert "not measured yet" in rows["VAE, binarized MNIST"]
