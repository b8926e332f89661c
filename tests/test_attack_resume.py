"""Requeue-safe jobs. An attack job killed after some units (the clean test set, one attack at
one eps) resumes without redoing them and ends with what an uninterrupted job writes; progress
made for another model or job is thrown away. So does a transfer job, whose units are one
adversarial set on one target model. Training killed by SIGTERM resumes exactly."""

import json
import logging
import operator
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, TINY_CNN, TINY_DATASET, toy_images
from robdml import evaluation, job_progress, robustness
from robdml.adversarial import load_adversarial_set, save_adversarial_set, set_name
from robdml.attacks import runner
from robdml.code_version import code_version
from robdml.config import load_config
from robdml.data.prepared import load_split, save_split
from robdml.fast_path import configure_fast_path
from robdml.job_progress import (
    JobProgress,
    attack_job_manifest,
    remove_finished,
    transfer_job_manifest,
)
from robdml.models import build_members, load_model, save_model
from robdml.specs import attack_job_spec, evaluation_spec, members_job_spec

CONFIG = load_config(REPO / "config/demo.yaml")
EVALUATION = evaluation_spec(CONFIG)
IDS = {"dataset": "glyphs", "backbone": "cnn", "defense": "eat", "seed": 0}
# the scripts' own code versions: what their progress manifests hold
ATTACK_CODE = code_version(REPO / "src/attack.py", REPO / "src")
TRANSFER_CODE = code_version(REPO / "src/transfer.py", REPO / "src")
KEPT = [["random_target", 64.0], ["cluster_mi", 8.0]]
# the job's units: clean, random_target at 8 and at check (a)'s probe (64), cluster_mi
# (re-fitting) at 8
FULL_CRAFTING = [("random_target", [8.0, 64.0]), ("mi", [8.0])]


def tiny_job(steps: int = 3) -> dict:
    """The demo's label-free job in short, on a two-member ensemble, keeping two of its sets."""
    config = json.loads(json.dumps(CONFIG))
    for attack in config["attacks"].values():
        attack["steps"] = steps
    job = attack_job_spec(config, "glyphs", "cnn", "eat", 0, "label_free")
    return job | {"members": 2, "keep": KEPT}


def write_model(path, seed: int = 0):
    spec = {"dataset": TINY_DATASET, "backbone": TINY_CNN, "seed": seed}
    save_model(path, spec, build_members(spec, 2), [])
    return path


def write_split(path):
    images, labels = toy_images()
    save_split(path, images, labels, [f"class{c}" for c in range(4)], {"source": "toy"})
    return path


@pytest.fixture
def files(tmp_path):
    return write_model(tmp_path / "model.pt"), load_split(write_split(tmp_path / "test.pt"))


def run_job(model_file, split, job, progress_dir, sets_dir, code=ATTACK_CODE) -> list[dict]:
    """What src/attack.py does, in this process."""
    progress = JobProgress(
        progress_dir, attack_job_manifest(job, EVALUATION, IDS, model_file, code)
    )
    return robustness.attack_job(
        lambda member: load_model(model_file, "cpu", member),
        split, job, EVALUATION, IDS, sets_dir, torch.device("cpu"),
        configure_fast_path("cpu"), progress,
    )  # fmt: skip


def killed_after_one_set(*args):
    """attack_each_eps that stops the job, as a kill would, while crafting its second set."""
    crafted = runner.attack_each_eps(*args)
    yield next(crafted)
    raise KeyboardInterrupt("simulated SIGTERM")


def interrupt(monkeypatch, *job_args):
    """Run the job until it is killed after its clean unit and random_target at eps 8."""
    monkeypatch.setattr(robustness, "attack_each_eps", killed_after_one_set)
    with pytest.raises(KeyboardInterrupt):
        run_job(*job_args)
    monkeypatch.undo()


def spy_on_crafting(monkeypatch) -> list:
    """(method, eps list) of every attack_each_eps call from now on."""
    calls = []

    def crafting(model, images, labels, params, eps_255_list, *rest):
        calls.append((params["method"], list(eps_255_list)))
        yield from runner.attack_each_eps(model, images, labels, params, eps_255_list, *rest)

    monkeypatch.setattr(robustness, "attack_each_eps", crafting)
    return calls


def without_timings(records: list[dict]) -> list[dict]:
    return [{key: value for key, value in r.items() if key != "seconds"} for r in records]


def test_a_killed_job_resumes_after_its_finished_units_to_the_uninterrupted_result(
    tmp_path, files, monkeypatch, caplog
):
    model_file, split = files
    job = tiny_job()
    full = run_job(model_file, split, job, tmp_path / "full.progress", tmp_path / "full")
    progress = tmp_path / "job.progress"
    interrupt(monkeypatch, model_file, split, job, progress, tmp_path / "sets")
    calls = spy_on_crafting(monkeypatch)
    caplog.set_level(logging.INFO, logger="robdml.job_progress")
    resumed = run_job(model_file, split, job, progress, tmp_path / "sets")
    assert [r.getMessage() for r in caplog.records] == [
        f"resuming: the clean test set already done ({progress})",
        f"resuming: random_target at eps 8/255 already done ({progress})",
    ]
    assert calls == [("random_target", [64.0]), ("mi", [8.0])]
    ids = [operator.itemgetter("attack", "eps_255", "threat", "source")(r["ids"]) for r in full]
    assert ids == [
        ("clean", 0, "clean", ""), ("random_target", 8, "whitebox", ""),
        ("random_target", 8, "member", "member0"), ("random_target", 8, "member", "member1"),
        ("random_target", 64, "breaking", ""), ("cluster_mi", 8, "whitebox", ""),
        ("cluster_mi", 8, "member", "member0"), ("cluster_mi", 8, "member", "member1"),
    ]  # fmt: skip
    assert without_timings(resumed) == without_timings(full)
    for name, eps in KEPT:
        path = f"{name}/eps{eps:g}.pt"
        ours, theirs = (load_adversarial_set(tmp_path / d / path) for d in ("sets", "full"))
        assert ours.keys() == theirs.keys()
        for key in theirs.keys() - {"seconds_crafting"}:
            same = torch.equal if torch.is_tensor(theirs[key]) else operator.eq
            assert same(ours[key], theirs[key]), key


@pytest.mark.parametrize(
    "change",
    [
        "model file (sha256)",
        "job spec",
        "package versions",
        "version of the code (robdml.code_version)",
    ],
)
def test_progress_made_for_another_model_or_job_is_removed_and_says_why(
    tmp_path, files, monkeypatch, caplog, change
):
    model_file, split = files
    progress = tmp_path / "job.progress"
    interrupt(monkeypatch, model_file, split, tiny_job(), progress, tmp_path / "sets")
    job = tiny_job(steps=4) if change == "job spec" else tiny_job()
    if change == "model file (sha256)":
        model_file = write_model(tmp_path / "other.pt", seed=1)
    if change == "package versions":
        monkeypatch.setattr(job_progress, "package_versions", lambda: {"torch": "2.0.0"})
    code = "edited" if change.startswith("version of the code") else ATTACK_CODE
    calls = spy_on_crafting(monkeypatch)
    caplog.set_level(logging.INFO, logger="robdml.job_progress")
    run_job(model_file, split, job, progress, tmp_path / "sets", code)
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring progress {progress}: made for another {change}; starting over"
    ]
    assert calls == FULL_CRAFTING
    manifest = json.loads((progress / "manifest.json").read_text())
    assert manifest == attack_job_manifest(job, EVALUATION, IDS, model_file, code)


def test_a_finished_job_whose_output_was_deleted_crafts_nothing_again(tmp_path, files, monkeypatch):
    """A job that finished just after SLURM's time limit is reported failed and Snakemake
    deletes its output: its retry finds every unit, sets included, and crafts nothing."""
    model_file, split = files
    job, progress, sets = tiny_job(), tmp_path / "job.progress", tmp_path / "sets"
    first = run_job(model_file, split, job, progress, sets)
    shutil.rmtree(sets)
    calls = spy_on_crafting(monkeypatch)
    assert run_job(model_file, split, job, progress, sets) == first
    assert calls == []
    assert all((sets / f"{name}/eps{eps:g}.pt").exists() for name, eps in KEPT)


def test_attack_script_resumes_then_leaves_only_its_outputs(tmp_path, files, monkeypatch):
    """src/attack.py, as the workflow runs it, after a kill: it resumes, links the kept sets
    into --sets (each loads with weights_only=True) and writes the metrics; its progress stays
    until the workflow has accepted the outputs (remove_finished, on success)."""
    model_file, split = files
    job, progress, sets = tiny_job(), tmp_path / "job.progress", tmp_path / "sets"
    interrupt(monkeypatch, model_file, split, job, progress, sets)
    run = subprocess.run(
        [sys.executable, str(REPO / "src/attack.py"), "--job", json.dumps(job),
         "--evaluation", json.dumps(EVALUATION), "--ids", json.dumps(IDS),
         "--model", str(model_file), "--data", str(tmp_path / "test.pt"),
         "--metrics", str(tmp_path / "job.json"), "--sets", str(sets),
         "--progress", str(progress)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"resuming: random_target at eps 8/255 already done ({progress})" in run.stderr
    assert progress.exists()
    remove_finished(tmp_path)
    assert not progress.exists()
    assert sorted(str(p.relative_to(sets)) for p in sets.rglob("*.pt")) == [
        "cluster_mi/eps8.pt", "random_target/eps64.pt"
    ]  # fmt: skip
    for path in sets.rglob("*.pt"):
        assert torch.load(path, weights_only=True)["images"].dtype == torch.uint8
    records = json.loads((tmp_path / "job.json").read_text())["records"]
    assert [r["ids"]["eps_255"] for r in records if r["ids"]["source"] == ""] == [0, 8, 64, 8]


def test_sigterm_leaves_a_checkpoint_the_training_rerun_resumes_to_the_same_model(
    tmp_path, tiny_spec
):
    """SIGTERM (a SLURM time limit, preemption) kills src/train.py wherever it is, inside a
    checkpoint write included (writes are atomic); the rerun resumes from the last checkpoint
    and ends with the parameters of an uninterrupted run."""
    epochs = tiny_spec["training"]["epochs"] = 40  # a second or two: time for SIGTERM
    write_split(tmp_path / "train.pt")

    def command(name):
        return [sys.executable, str(REPO / "src/train.py"), "--spec", json.dumps(tiny_spec),
                "--data", str(tmp_path / "train.pt"), "--model", str(tmp_path / f"{name}.pt"),
                "--checkpoint", str(tmp_path / f"{name}.ckpt")]  # fmt: skip

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    uninterrupted = subprocess.Popen(command("full"), **quiet)
    killed = subprocess.Popen(command("resumed"), **quiet)
    while not (tmp_path / "resumed.ckpt").exists() and killed.poll() is None:
        time.sleep(0.01)
    killed.send_signal(signal.SIGTERM)
    assert killed.wait() == -signal.SIGTERM  # killed while training, not after
    rerun = subprocess.run(command("resumed"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed_after = re.search(r"resuming from \S+resumed\.ckpt after epoch (\d+)", rerun.stderr)
    assert resumed_after and 1 <= int(resumed_after[1]) < epochs
    assert uninterrupted.wait() == 0
    full, _ = load_model(tmp_path / "full.pt")
    resumed, _ = load_model(tmp_path / "resumed.pt")
    for (key, p), (_, q) in zip(
        full.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), key


SOURCE = {"defense": "pgd_at", "seed": 0}


@pytest.fixture
def transfer_files(tmp_path):
    """Two target models ((ids, file)) and two sets ((attack, file)): the test images brightened
    by eps stand in for sets crafted on SOURCE (a transfer job only evaluates them)."""
    targets = [
        (IDS | {"defense": defense, "seed": seed}, write_model(tmp_path / f"{defense}.pt", seed))
        for defense, seed in [("eat", 0), ("vanilla", 1)]
    ]
    split = load_split(write_split(tmp_path / "test.pt"))
    return targets, [write_set(tmp_path / "sets", split, *kept) for kept in KEPT]


def write_set(directory, split, name: str, eps: float, shift: int = 0) -> tuple:
    """(name, file) of a set; `shift` brightens it more: the same set crafted differently."""
    images = (split["images"].int() + int(eps) + shift).clamp(max=255).to(torch.uint8)
    result = {"images": images, "perturbed": images != split["images"], "eps_255": eps}
    path = directory / set_name(name, eps)
    save_adversarial_set(path, result, split, {"attack": {"method": name}})
    return name, path


def run_transfer(targets, sets, progress_dir) -> list[dict]:
    """What src/transfer.py does, in this process."""
    manifest = transfer_job_manifest(EVALUATION, SOURCE, targets, sets, TRANSFER_CODE)
    progress = JobProgress(progress_dir, manifest)
    models = [(ids, *load_model(path)) for ids, path in targets]
    return robustness.transfer_job(models, sets, SOURCE, EVALUATION, torch.device("cpu"), progress)


def spy_on_transfer(monkeypatch, stop_after: int | None = None) -> list:
    """(attack, eps, target defense) of every set evaluated from now on; with `stop_after`,
    the job stops, as a kill would, when it starts evaluating one more."""
    calls = []

    def evaluating(model, model_spec, images, split, ids, **rest):
        if len(calls) == stop_after:
            raise KeyboardInterrupt("simulated SIGTERM")
        calls.append((ids["attack"], ids["eps_255"], ids["defense"]))
        return evaluation.record(model, model_spec, images, split, ids, **rest)

    monkeypatch.setattr(robustness, "record", evaluating)
    return calls


def interrupt_transfer(monkeypatch, *job_args):
    """Run the transfer job until it is killed after its first unit."""
    spy_on_transfer(monkeypatch, stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        run_transfer(*job_args)
    monkeypatch.undo()


def test_a_killed_transfer_job_resumes_after_its_finished_units_to_the_uninterrupted_result(
    tmp_path, transfer_files, monkeypatch, caplog
):
    targets, sets = transfer_files
    full = run_transfer(targets, sets, tmp_path / "full.progress")
    progress = tmp_path / "transfer.progress"
    interrupt_transfer(monkeypatch, targets, sets, progress)
    calls = spy_on_transfer(monkeypatch)
    caplog.set_level(logging.INFO, logger="robdml.job_progress")
    resumed = run_transfer(targets, sets, progress)
    assert [r.getMessage() for r in caplog.records] == [
        f"resuming: random_target at eps 64/255 on eat/seed0 already done ({progress})"
    ]
    assert calls == [
        ("random_target", 64, "vanilla"), ("cluster_mi", 8, "eat"), ("cluster_mi", 8, "vanilla")
    ]  # fmt: skip
    assert [(r["ids"]["attack"], r["ids"]["defense"], r["ids"]["source"]) for r in full] == [
        ("random_target", "eat", "pgd_at/seed0"), ("random_target", "vanilla", "pgd_at/seed0"),
        ("cluster_mi", "eat", "pgd_at/seed0"), ("cluster_mi", "vanilla", "pgd_at/seed0"),
    ]  # fmt: skip
    assert {(r["ids"]["source_defense"], r["ids"]["source_seed"]) for r in full} == {("pgd_at", 0)}
    assert without_timings(resumed) == without_timings(full)


@pytest.mark.parametrize(
    "change", ["target model file (sha256)", "adversarial set file (attack, sha256)"]
)
def test_transfer_progress_made_for_another_target_model_or_set_is_removed_and_says_why(
    tmp_path, transfer_files, monkeypatch, caplog, change
):
    targets, sets = transfer_files
    progress = tmp_path / "transfer.progress"
    interrupt_transfer(monkeypatch, targets, sets, progress)
    if change == "target model file (sha256)":  # eat/seed0 retrained since
        targets[0] = (targets[0][0], write_model(tmp_path / "retrained.pt", seed=2))
    else:  # random_target at eps 64 crafted again, differently
        split = load_split(tmp_path / "test.pt")
        sets[0] = write_set(tmp_path / "recrafted", split, *KEPT[0], shift=1)
    calls = spy_on_transfer(monkeypatch)
    caplog.set_level(logging.INFO, logger="robdml.job_progress")
    run_transfer(targets, sets, progress)
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring progress {progress}: made for another {change}; starting over"
    ]
    assert len(calls) == 4
    manifest = json.loads((progress / "manifest.json").read_text())
    assert manifest == transfer_job_manifest(EVALUATION, SOURCE, targets, sets, TRANSFER_CODE)


def test_transfer_script_resumes_then_leaves_only_its_metrics(
    tmp_path, transfer_files, monkeypatch
):
    """src/transfer.py, as the workflow runs it, after a kill: it resumes and writes the
    metrics; its progress stays until the workflow removes it (remove_finished)."""
    targets, sets = transfer_files
    progress = tmp_path / "transfer.progress"
    interrupt_transfer(monkeypatch, targets, sets, progress)
    run = subprocess.run(
        [sys.executable, str(REPO / "src/transfer.py"), "--evaluation", json.dumps(EVALUATION),
         "--source-defense", "pgd_at", "--source-seed", "0",
         "--targets", json.dumps([ids for ids, _ in targets]),
         "--models", *[str(path) for _, path in targets],
         "--names", *[name for name, _ in sets], "--sets", *[str(path) for _, path in sets],
         "--metrics", str(tmp_path / "transfer.json"), "--progress", str(progress)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"random_target at eps 64/255 on eat/seed0 already done ({progress})" in run.stderr
    assert progress.exists()
    remove_finished(tmp_path)
    assert not progress.exists()
    records = json.loads((tmp_path / "transfer.json").read_text())["records"]
    assert [(r["ids"]["attack"], r["ids"]["defense"]) for r in records] == [
        ("random_target", "eat"), ("random_target", "vanilla"),
        ("cluster_mi", "eat"), ("cluster_mi", "vanilla"),
    ]  # fmt: skip


def members_job(steps: int = 3) -> dict:
    """The demo's members job in short, on a two-member ensemble: members alone on the clean
    set, and random_target and mi crafted on each member at eps 8 and 64 (a sweep of two)."""
    config = json.loads(json.dumps(CONFIG))
    for attack in config["attacks"].values():
        attack["steps"] = steps
    config["ensemble_members"] = {"evaluate": True, "attacks": ["random_target", "mi"]}
    config["evaluation"]["eps_255"] = [8, 64]
    return members_job_spec(config, "eat") | {"members": 2}


def run_members(model_file, split, job, progress_dir) -> list[dict]:
    """What src/attack_members.py does, in this process."""
    code = code_version(REPO / "src/attack_members.py", REPO / "src")
    progress = JobProgress(
        progress_dir, attack_job_manifest(job, EVALUATION, IDS, model_file, code)
    )
    return robustness.members_job(
        lambda member: load_model(model_file, "cpu", member), split, job, EVALUATION, IDS,
        torch.device("cpu"), configure_fast_path("cpu"), progress,
    )  # fmt: skip


def test_a_killed_members_job_resumes_after_its_finished_units_to_the_uninterrupted_result(
    tmp_path, files, monkeypatch, caplog
):
    """Units: each member's clean set, each member attack at each eps on each member; the
    ensemble is what every member attack is measured on."""
    model_file, split = files
    job = members_job()
    full = run_members(model_file, split, job, tmp_path / "full.progress")
    progress = tmp_path / "members.progress"
    monkeypatch.setattr(robustness, "attack_each_eps", killed_after_one_set)
    with pytest.raises(KeyboardInterrupt):
        run_members(model_file, split, job, progress)
    monkeypatch.undo()
    calls = spy_on_crafting(monkeypatch)
    caplog.set_level(logging.INFO, logger="robdml.job_progress")
    resumed = run_members(model_file, split, job, progress)
    assert [r.getMessage() for r in caplog.records] == [
        f"resuming: the clean test set on member0 already done ({progress})",
        f"resuming: random_target at eps 8/255 on member0 already done ({progress})",
    ]
    assert calls == [
        ("random_target", [64.0]), ("mi", [8.0, 64.0]),  # member 0, after the kill
        ("random_target", [8.0, 64.0]), ("mi", [8.0, 64.0]),  # member 1
    ]  # fmt: skip
    assert [(r["ids"]["attack"], r["ids"]["eps_255"], r["ids"]["threat"], r["ids"]["source"])
            for r in full][:6] == [
        ("clean", 0, "member", "member0"), ("random_target", 8, "member_attack", "member0"),
        ("random_target", 64, "member_attack", "member0"), ("mi", 8, "member_attack", "member0"),
        ("mi", 64, "member_attack", "member0"), ("clean", 0, "member", "member1"),
    ]  # fmt: skip
    assert len(full) == 10
    assert without_timings(resumed) == without_timings(full)
