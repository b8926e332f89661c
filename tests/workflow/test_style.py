"""Style gates that CI enforces through the test command: Snakemake's linter, snakefmt and ruff."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO

BIN = Path(sys.executable).parent


def run(*command):
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True)


def test_snakemake_lint_is_clean():
    result = run(sys.executable, "-m", "snakemake", "--lint")
    assert result.returncode == 0, result.stderr[-3000:]


def test_snakefmt_leaves_the_workflow_unchanged():
    result = run(str(BIN / "snakefmt"), "--check", "Snakefile", "workflow")
    assert result.returncode == 0, result.stderr[-3000:]


def test_ruff_lint_and_format_are_clean():
    lint = run(str(BIN / "ruff"), "check", "src", "tests", "benchmarks", "tools")
    assert lint.returncode == 0, lint.stdout[-3000:]
    form = run(str(BIN / "ruff"), "format", "--check", "src", "tests", "benchmarks", "tools")
    assert form.returncode == 0, form.stdout[-3000:]
