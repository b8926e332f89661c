"""Provenance of a run's tables, results/summary.md, and the measured tables copied into the
documentation from them (tools/copy_results.py)."""

import subprocess
import sys

import pytest

from conftest import REPO
from robdml.provenance import git_state, provenance_text, run_provenance

sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "src"))
import copy_results  # noqa: E402

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


def test_summary_lists_the_checks_and_the_png_figures():
    record = run_provenance("h") | {"commit": "feedbeef" * 5, "dirty": False}
    text = summary.summary(MAIN, record, "20 checks, 0 failed.\n\n| ... |\n",
                           ["results/figures/a.png", "results/figures/a.pdf"])  # fmt: skip
    assert "20 checks, 0 failed." in text and "- `results/figures/a.png`" in text
    assert "a.pdf" not in text


def test_a_copied_table_is_stamped_with_its_source_command_and_the_runs_commit(tmp_path):
    run = tmp_path / "clone"
    (run / "results/tables").mkdir(parents=True)
    (run / "results/provenance.json").write_text('{"commit": "' + "feedbeef" * 5 + '"}')
    source = run / "results/tables/main.md"
    source.write_text("| defense | NMI |\n|---|---|\n| vanilla | 0.880 |\n")
    page = tmp_path / "page.md"
    page.write_text("# Results\n\nintro\n")
    copy_results.copy(page, "demo", source, "snakemake --cores 2", None)
    (block,) = copy_results.BLOCK.finditer(page.read_text())
    stamp = copy_results.parse_stamp(block.group("stamp"))
    assert stamp["source"] == "results/tables/main.md" and stamp["commit"] == "feedbee"
    assert stamp["command"] == "snakemake --cores 2"
    assert stamp["sha256"] == copy_results.sha256(copy_results.copied_text(block.group("body")))
    assert (
        "| vanilla | 0.880 |" in block.group("body")
        and "*Copied from `results/" in page.read_text()
    )
    source.write_text("| defense | NMI |\n|---|---|\n| vanilla | 0.870 |\n")
    copy_results.copy(page, "demo", source, "snakemake --cores 2", None)  # replaced, not added
    assert page.read_text().count("<!-- measured demo") == 1 and "0.870" in page.read_text()
    (run / "results/provenance.json").write_text('{"commit": "unknown"}')
    with pytest.raises(SystemExit, match="give --commit"):
        copy_results.copy(page, "demo", source, "snakemake --cores 2", None)
