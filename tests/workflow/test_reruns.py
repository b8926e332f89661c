"""Reruns decided by content: a job reruns when the code it runs changed (its step script or a
robdml module the script imports), never for a file time or a comment; a fresh clone over a
prepared, read-only data root plans no data job; paths with a space and non-ASCII letters
work."""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import copy_repo


def snakemake(repo: Path, *args) -> subprocess.CompletedProcess:
    """Snakemake on the `repo` copy's Snakefile, its robdml importable, in `repo`."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(repo / "src")}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), *args],
        cwd=repo, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def planned(run: subprocess.CompletedProcess, rule: str) -> bool:
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return any(
        line.split()[:1] == [rule] for line in run.stdout.split("Job stats:")[-1].split("\n")
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


# ------------------------------------------------------------------ code versions


def test_code_version_follows_the_code_a_script_imports(tmp_path):
    src = copy_repo(tmp_path / "repo") / "src"
    script = src / "prepare_data.py"
    before = fresh_code_version(script, src)
    glyphs = src / "robdml" / "data" / "glyphs.py"  # imported by prepare_data, indirectly
    edit(glyphs, '"""', '"""A docstring edit. ')
    glyphs.write_text(glyphs.read_text() + "\n# a comment\n\n")
    assert fresh_code_version(script, src) == before
    edit(src / "robdml" / "attacks" / "pgd.py", "return", "return  ")  # not imported by it
    edit(src / "robdml" / "defenses" / "trades.py", "beta", "beta_renamed")  # not imported
    assert fresh_code_version(script, src) == before
    text = glyphs.read_text()
    glyphs.write_text(text.replace("def ", "def _unused():\n    return 1\n\n\ndef ", 1))
    assert fresh_code_version(script, src) != before


def fresh_code_version(script: Path, src: Path) -> str:
    """code_version without the per-process caches (files were edited in between)."""
    run = subprocess.run(
        [sys.executable, "-c",
         "import sys; from robdml.code_version import code_version;"
         f"print(code_version({str(script)!r}, {str(src)!r}))"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(src)},
    )  # fmt: skip
    return run.stdout.strip()


# ------------------------------------------------------------------ the workflow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A clone (its path has a space and a non-ASCII letter) that prepared the demo's data."""
    base = tmp_path_factory.mktemp("reruns")
    repo = copy_repo(base / "clone ü")
    data_root = base / "shared data" / "ü"
    overlay = repo / "shared.yaml"
    overlay.write_text(yaml.safe_dump({"data_root": str(data_root)}))
    configs = ["--configfile", str(repo / "config" / "demo.yaml"), str(overlay)]  # last
    test_split = data_root / "glyphs" / "test.pt"
    run = snakemake(repo, str(test_split), "--cores", "1", *configs)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert test_split.is_file()
    return {"repo": repo, "configs": configs, "data_root": data_root, "target": str(test_split)}


def test_file_times_and_comments_rerun_nothing_code_reruns_its_jobs(prepared):
    repo, configs, target = prepared["repo"], prepared["configs"], prepared["target"]
    dry_run = ["-n", target, "--cores", "1", *configs]
    for path in (repo / "src" / "prepare_data.py", repo / "src" / "robdml" / "data" / "glyphs.py"):
        path.write_text(path.read_text() + "\n# a comment only\n")  # newer, other content
    assert not planned(snakemake(repo, *dry_run), "prepare_data")
    glyphs = repo / "src" / "robdml" / "data" / "glyphs.py"
    edit(glyphs, "def ", "def _unused():\n    return 1\n\n\ndef ")  # the code it runs
    run = snakemake(repo, *dry_run)
    assert planned(run, "prepare_data"), run.stdout[-2000:]
    assert "Params have changed since last execution" in run.stdout, run.stdout[-2000:]


def test_fresh_clone_over_a_read_only_prepared_data_root_plans_no_data_job(prepared, tmp_path):
    """A second clone (new file times, no Snakemake metadata) pointed at the first one's
    prepared data root, made read-only, plans training but no data job; `--touch` too."""
    clone = copy_repo(tmp_path / "second clone")
    now = time.time() + 1
    for path in clone.rglob("*"):  # as `git clone` leaves them: newer than the prepared data
        os.utime(path, (now, now))
    overlay = clone / "shared.yaml"
    overlay.write_text(yaml.safe_dump({"data_root": str(prepared["data_root"])}))
    configs = ["--configfile", str(clone / "config" / "demo.yaml"), str(overlay)]
    files = [path for path in prepared["data_root"].rglob("*") if path.is_file()]
    modes = {path: path.stat().st_mode for path in files}
    try:
        for path in files:
            path.chmod(0o444)
        run = snakemake(clone, "-n", "--cores", "1", *configs)
        assert planned(run, "train") and not planned(run, "prepare_data"), run.stdout[-3000:]
        times = {path: path.stat().st_mtime_ns for path in files}
        touched = snakemake(clone, prepared["target"], "--touch", "--cores", "1", *configs)
        assert touched.returncode == 0, touched.stderr[-3000:]
        assert {path: path.stat().st_mtime_ns for path in files} == times
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def read_only_mounts_refused() -> str | None:
    """Why this machine cannot bind-mount a directory read-only in a private mount namespace
    (`unshare -m`, as root), or None."""
    try:
        run = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    except FileNotFoundError:
        return "no `unshare` here"
    return (run.stderr.strip() or f"exit {run.returncode}") if run.returncode else None


def test_a_fresh_clone_trains_from_a_read_only_mount_of_the_prepared_data(prepared, tmp_path):
    """The prepared data root bind-mounted read-only (as a shared, read-only copy would be):
    a fresh clone plans no data job and trains a model from it; a write there would fail."""
    refused = read_only_mounts_refused()
    if refused:
        pytest.skip(f"no read-only bind mount here: {refused}")
    mount = tmp_path / "read-only data"
    mount.mkdir()
    clone = copy_repo(tmp_path / "third clone")
    overlay = clone / "shared.yaml"
    overlay.write_text(
        yaml.safe_dump({"data_root": str(mount), "recipes": {"glyphs": {"epochs": 1}}})
    )
    model = "results/models/glyphs/cnn/vanilla/seed0/model.pt"
    train = ["-m", "snakemake", "-s", str(clone / "Snakefile"), model, "--cores", "1",
             "--configfile", str(clone / "config" / "demo.yaml"), str(overlay)]  # fmt: skip
    data, target = shlex.quote(str(prepared["data_root"])), shlex.quote(str(mount))
    script = (
        f"mount --bind {data} {target} && mount -o remount,ro,bind {target} && "
        f"touch {target}/written 2>/dev/null && exit 3; "  # the mount must refuse writes
        f"exec {shlex.quote(sys.executable)} {shlex.join(train)}"
    )
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=clone, capture_output=True, text=True,
        env={**os.environ, "PATH": path, "PYTHONPATH": str(clone / "src")}, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "rule train:" in run.stdout + run.stderr
    assert "prepare_data" not in run.stdout + run.stderr
    assert (clone / model).is_file()
