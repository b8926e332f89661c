"""Where a run's tables come from: the git commit of the workflow (and whether its tree had
uncommitted changes), the hash of the resolved config and the package versions. Every table
caption names them and `results/provenance.json` holds them for the whole run."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from robdml.io import package_versions

REPO = Path(__file__).resolve().parents[2]


def git_state(repo: str | Path = REPO) -> dict:
    """{'commit': sha or 'unknown', 'dirty': bool or None} of the workflow's checkout; None and
    'unknown' where it is not a git checkout (e.g. an unpacked release) or git is missing.
    Untracked files do not count as dirty (results/ is ignored; new scratch files are not
    the workflow)."""

    def git(*args: str) -> str | None:
        try:
            run = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
            )  # fmt: skip
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return None
        return run.stdout.strip() if run.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def run_provenance(config_hash: str, repo: str | Path = REPO) -> dict:
    """The provenance record of a run's tables."""
    return {
        **git_state(repo),
        "config_hash": config_hash,
        "versions": package_versions(),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def provenance_text(provenance: dict) -> str:
    """One sentence for a caption: commit (short, dirty or not), config hash, key versions."""
    commit = provenance["commit"][:10]
    if provenance["dirty"]:
        commit += " with uncommitted changes"
    versions = ", ".join(
        f"{name} {provenance['versions'][name]}"
        for name in ("robdml", "torch", "scikit-learn", "pytorch-metric-learning")
        if name in provenance["versions"]
    )
    return f"Produced by commit {commit}, config hash {provenance['config_hash']}; {versions}."
