"""The README's results tables and the configs' Expected lines are generated from the committed results files
(bench/tables.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from bench import tables
from rlgen.cli.listing import header_paragraph


@pytest.mark.parametrize("document", list(tables.DOCUMENTS), ids=lambda p: p.name)
def test_tables_are_what_the_results_files_say(document):
    assert tables.render(document) == document.read_text(), \
        f"a table in {document.name} differs from its JSON: python -m bench.tables --write"


def test_a_changed_number_changes_the_table_and_a_missing_file_says_so(tmp_path):
    shutil.copy(tables.RESULTS / "dqn_cartpole.json", tmp_path)
    saved = json.loads((tmp_path / "dqn_cartpole.json").read_text())
    saved.update(median_env_steps_to_solve=12345, seeds_solved="4/5")
    (tmp_path / "dqn_cartpole.json").write_text(json.dumps(saved))
    rows = {line.split(" | ")[0].strip("| "): line for line in tables.table(tables.LEARNING, tmp_path).splitlines()}
    assert "4/5 seeds solved, median 12,345 env steps" in rows["DQN, CartPole-v1"]
    assert "| not met |" in rows["DQN, CartPole-v1"], "4 of 5 seeds solved: the target is not met"
    assert "not measured yet" in rows["VAE, binarized MNIST"]
    # A record joined from seeds of different sessions names them (bench.sac_hopper --join).
    shutil.copy(tables.RESULTS / "sac_hopper.json", tmp_path)
    saved = json.loads((tmp_path / "sac_hopper.json").read_text())
    saved.update(seeds=2, trained_seeds=[1, 2], final_evals=[3000.0, 2900.0], final_eval_env_steps=[295000] * 2)
    (tmp_path / "sac_hopper.json").write_text(json.dumps(saved))
    rows = {line.split(" | ")[0].strip("| "): line for line in tables.table(tables.LEARNING, tmp_path).splitlines()}
    assert "greedy return 3,000, 2,900 at 295,000, 295,000 env steps (seeds 1, 2)" in rows["SAC, Hopper-v5"]


@pytest.mark.parametrize("config, results", sorted(tables.EXPECTED.items()))
def test_config_expected_lines_are_what_the_results_file_says(config, results):
    text = (tables.CONFIGS / config).read_text()
    assert tables.render_config(text, results) == text, \
        f"configs/{config}: its Expected lines differ from {results}.json: python -m bench.tables --write"
    # ... and `rlgen list` shows the whole paragraph (no continuation line is mistaken for a command)
    assert header_paragraph(text.splitlines(), "Expected") == tables.expected(results)


def test_a_changed_number_changes_only_the_expected_paragraph(tmp_path):
    shutil.copy(tables.RESULTS / "dqn_cartpole.json", tmp_path)
    saved = json.loads((tmp_path / "dqn_cartpole.json").read_text())
    saved.update(median_env_steps_to_solve=12345, seeds_solved="4/5")
    (tmp_path / "dqn_cartpole.json").write_text(json.dumps(saved))
    before = (tables.CONFIGS / "dqn/cartpole.yaml").read_text()
    after = tables.render_config(before, "dqn_cartpole", tmp_path)
    paragraph = header_paragraph(after.splitlines(), "Expected")
    assert "4/5 seeds solved, median 12,345 env steps" in paragraph and "(not met; " in paragraph
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert changed and all(line.startswith("#") and len(line) <= tables.HEADER_WIDTH for line in changed)
    assert after.split("# Wall time")[1] == before.split("# Wall time")[1], "only the Expected paragraph changes"
    (tmp_path / "dqn_cartpole.json").unlink()
    assert "not measured yet" in header_paragraph(tables.render_config(before, "dqn_cartpole", tmp_path)
                                                  .splitlines(), "Expected")


def test_readme_and_docs_stay_readable():
    """The README is read before anything runs: at most 1,500 words, no line over 400 characters (the summary keeps
    the figure and the verdict, the detail stays in the JSON and the family pages). No docs page over 3,000 words."""
    readme = tables.README.read_text()
    assert len(readme.split()) <= 1500, f"README.md has {len(readme.split())} words"
    assert max(len(line) for line in readme.splitlines()) <= 400
    for page in sorted(tables.DOCS.glob("*.md")):
        words = len(page.read_text().split())
        assert words <= 3000, f"{page.name} has {words} words: split it or cut it"


def test_the_summary_has_every_current_result_and_links_to_the_full_table():
    summary, _ = tables.TABLES["summary"]
    shown = {row.results for row in summary}
    assert shown == {row.results for row in tables.LEARNING} - set(tables.SUPERSEDED)
    full = tables.RESULTS_PAGE.read_text()
    measured = [row for row in tables.LEARNING if (tables.RESULTS / f"{row.results}.json").exists()]
    assert all(f"[{row.results}.json]" in full for row in measured), "docs/results.md has every measured row"
