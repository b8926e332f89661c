"""The progress of one attack, members or transfer job, kept between attempts so that a job
killed at its time limit or preempted loses at most one unit of work: for an attack job the
clean test set or one attack at one eps, for a members job the same on one member, for a
transfer job one adversarial set on one target model.

Snakemake deletes a job's declared outputs before it runs the job again, so the progress lives
in a directory of its own (like training's checkpoint), checked against a manifest of
everything that determines the job's results, the version of its code included: a unit found
there is exactly what running it again would give. Only JSON is read back from it; the
adversarial sets it holds are linked into the job's output, never loaded.
"""

import json
import logging
import os
import shutil
from pathlib import Path

from robdml.adversarial import set_name
from robdml.io import package_versions, sha256sum, write_json

log = logging.getLogger(__name__)

# a unit: (attack, eps) of an attack job; (attack, eps, member: 'member0') of a members job;
# (attack, eps, target: 'vanilla/seed1') of a transfer job
Unit = tuple[str, float] | tuple[str, float, str]
CLEAN = ("clean", 0.0)  # an attack job's clean record: a unit of its own
# what differs, in words, when a progress directory's manifest is not the job's (either kind)
MANIFEST_PARTS = {
    "code": "version of the code (robdml.code_version)",
    "job": "job spec",
    "evaluation": "evaluation spec",
    "model_ids": "model ids",
    "model_sha256": "model file (sha256)",
    "source": "source model",
    "target_ids": "target model ids",
    "target_sha256": "target model file (sha256)",
    "sets": "adversarial set file (attack, sha256)",
    "versions": "package versions",  # every record names them: one job, one set of versions
}


def attack_job_manifest(
    job: dict, evaluation: dict, model_ids: dict, model_file: str | Path, code: str
) -> dict:
    """Everything that determines an attack job's records and sets; `code`: the version of
    the code it runs (robdml.code_version)."""
    return {
        "code": code,
        "job": job,
        "evaluation": evaluation,
        "model_ids": model_ids,
        "model_sha256": sha256sum(model_file),
        "versions": package_versions(),
    }


def transfer_job_manifest(
    evaluation: dict,
    source: dict,
    targets: list[tuple[dict, str | Path]],
    sets: list[tuple[str, str | Path]],
    code: str,
) -> dict:
    """Everything that determines a transfer job's records: `targets` (ids, model file) and
    `sets` (attack, set file) as src/transfer.py is given them, and `code`. Hashing the sets
    reads them once per attempt: seconds, next to hours of evaluation."""
    return {
        "code": code,
        "evaluation": evaluation,
        "source": source,
        "target_ids": [ids for ids, _ in targets],
        "target_sha256": [sha256sum(path) for _, path in targets],
        "sets": [[name, sha256sum(path)] for name, path in sets],
        "versions": package_versions(),
    }


def describe(unit: Unit) -> str:
    name, eps, *target = unit
    what = "the clean test set" if name == CLEAN[0] else f"{name} at eps {eps:g}/255"
    return what + (f" on {target[0]}" if target else "")


class JobProgress:
    """The units an attack or transfer job has finished, in `directory`: per unit its records
    (JSON) and, if an attack job keeps it, its adversarial set. A directory whose manifest is
    not `manifest` is removed (and says why): its units belong to another job."""

    def __init__(self, directory: str | Path, manifest: dict):
        self.directory = Path(directory)
        manifest = json.loads(json.dumps(manifest))  # as the manifest file reads back
        reason = self.mismatch(manifest)
        if reason:
            log.warning("ignoring progress %s: %s; starting over", self.directory, reason)
            shutil.rmtree(self.directory)
        if not self.directory.exists():
            write_json(self.directory / "manifest.json", manifest)

    def mismatch(self, manifest: dict) -> str | None:
        """Why the progress in the directory is not this job's (None: it is, or there is none)."""
        path = self.directory / "manifest.json"
        if not self.directory.exists():
            return None
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            return f"no readable manifest ({error})"
        differing = [
            words
            for key, words in MANIFEST_PARTS.items()
            if saved.get(key) != manifest.get(key)  # a key of the other kind of job: None
        ]
        return f"made for another {', '.join(differing)}" if differing else None

    def records_path(self, unit: Unit) -> Path:
        name, eps, *target = unit
        path = "/".join([name, f"eps{eps:g}", *target])  # attack/eps8[/vanilla/seed1]
        return self.directory / f"{path}.json"

    def set_path(self, unit: tuple[str, float]) -> Path:
        """Where an attack job's kept adversarial set waits until the job moves it to its
        output."""
        return self.directory / set_name(*unit)

    def unfinished(self, units: list[Unit]) -> list[Unit]:
        """The units still to run; logs each one an earlier attempt finished."""
        to_do = []
        for unit in units:
            if self.done(unit):
                log.info("resuming: %s already done (%s)", describe(unit), self.directory)
            else:
                to_do.append(unit)
        return to_do

    def deliver_set(self, unit: tuple[str, float], target: Path) -> None:
        """Put a kept set into the job's output as a hard link (no second copy on disk; a copy
        across file systems): the progress keeps its own, since Snakemake deletes the output of
        a job that SLURM reports failed, even one that finished."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(self.set_path(unit), target)
        except OSError:
            shutil.copy2(self.set_path(unit), target)

    def done(self, unit: Unit) -> bool:
        """Its records are saved, and its set too if it kept one."""
        path = self.records_path(unit)
        if not path.exists():
            return False
        return not json.loads(path.read_text())["kept_set"] or self.set_path(unit).exists()

    def save(self, unit: Unit, records: list[dict], kept_set: bool) -> None:
        """Mark a unit finished with its records; call it after writing its set to `set_path`."""
        write_json(self.records_path(unit), {"records": records, "kept_set": kept_set})

    def records(self, unit: Unit) -> list[dict]:
        return json.loads(self.records_path(unit).read_text())["records"]


def remove_finished(metrics_root: str | Path) -> None:
    """Remove the progress of every job whose metrics JSON exists. The workflow calls it once
    a run has succeeded, not the job itself: a job that finishes just after SLURM's time limit
    is reported failed and its outputs deleted, and its retry must still find its units."""
    for progress in Path(metrics_root).glob("**/*.progress"):
        if progress.with_suffix(".json").is_file():
            shutil.rmtree(progress)
