"""Provenance of a run's tables, results/summary.md, and README's numbers copied from it."""

import subprocess
import sys

import pytest

from conftest import REPO
from robdml.provenance import git_state, provenance_text, run_provenance

sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "src"))
import readme_results  # noqa: E402

import summary  # noqa: E402


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_state_names_the_commit_and_a_dirty_tree(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    state = git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "untracked.txt").write_text("scratch\n")  # untracked: not the workflow
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "a.txt").write_text("two\n")
    assert git_state(tmp_path) == {"commit": state["commit"], "dirty": True}
    assert git_state(tmp_path / "nowhere") == {"commit": "unknown", "dirty": None}


def test_the_caption_sentence_names_commit_dirtiness_config_hash_and_versions():
    record = run_provenance("abc123")
    record |= {"commit": "0123456789abcdef", "dirty": True}
    text = provenance_text(record)
    assert text.startswith(
        "Produced by commit 0123456789 with uncommitted changes, config hash abc123;"
    )
    assert f"torch {record['versions']['torch']}" in text
    assert "uncommitted" not in provenance_text(record | {"dirty": False})


MAIN = "Caption.\n\n| defense | clean NMI |\n|:--|:--|\n| vanilla | **0.880 ± 0.004** |\n"


def test_readme_block_is_replaced_by_the_summary_main_table_and_its_commit(tmp_path):
    record = run_provenance("h") | {"commit": "feedbeef" * 5, "dirty": False}
    text = summary.summary(MAIN, record, "20 checks, 0 failed.\n\n| ... |\n",
                           ["results/figures/a.png", "results/figures/a.pdf"])  # fmt: skip
    assert "20 checks, 0 failed." in text and "- `results/figures/a.png`" in text
    assert "a.pdf" not in text
    begin, end = readme_results.BEGIN, readme_results.END
    readme = f"intro\n{begin}\nold numbers\n{end}\nend\n"
    updated = readme_results.replace_block(readme, readme_results.headline(text))
    assert "old numbers" not in updated and "| vanilla | **0.880 ± 0.004** |" in updated
    assert "Produced by commit feedbeeff" in updated and updated.endswith("end\n")
    with pytest.raises(ValueError, match="exactly one"):
        readme_results.replace_block("no markers", "x")
