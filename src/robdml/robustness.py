"""The work of the workflow's per-model jobs (robdml.jobs): craft adversarial test sets and
evaluate them in the same process, so a set is written only where a later job reads it.

- `attack_job`: a group of attacks against one model, every attack at its eps; each set
  evaluated on the model (white-box; at a breaking-eps probe, threat 'breaking') and, at the
  main eps, on each ensemble member alone.
  A killed job resumes after the units it finished (robdml.job_progress).
- `members_job`: an ensemble's members alone on the clean test set, and attacks crafted on
  one member evaluated on the whole ensemble; it resumes like an attack job.
- `transfer_job`: the adversarial sets crafted on one model evaluated on the models they
  target (black-box transfer); it resumes like an attack job.
Each returns its metrics records (robdml.evaluation).
"""

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from robdml.adversarial import (
    attack_record,
    load_adversarial_set,
    save_adversarial_set,
    set_name,
)
from robdml.attacks.runner import attack_each_eps
from robdml.evaluation import ids_of, record
from robdml.fast_path import FastPath
from robdml.io import spec_hash
from robdml.job_progress import CLEAN, JobProgress
from robdml.worst_case import BREAKING

# loads a trained model (or, with a member index, one ensemble member alone): (model, spec)
LoadModel = Callable[[int | None], tuple[torch.nn.Module, dict]]


def attack_job(
    load: LoadModel,
    split: dict,
    job: dict,
    evaluation: dict,
    model_ids: dict,
    sets_dir: str | Path,
    device: torch.device,
    fast_path: FastPath,
    progress: JobProgress,
) -> list[dict]:
    """Records of one attack job (`job`: robdml.specs.attack_job_spec); moves the sets it keeps
    into `sets_dir` at the end. Each unit (the clean test set; one attack at one eps) is saved
    in `progress` as soon as it is done, and one an earlier attempt saved is not run again; the
    caller removes `progress` once it has written the records. The attacks craft on their own
    copy of the model (the fast path may change its layout); every set is measured with the
    plain one."""
    measure = partial(record, split=split, spec=evaluation, device=device)
    model, model_spec = load(None)
    attacked, _ = load(None)
    members = [load(m) for m in range(job["members"])]
    units = [CLEAN] if job["clean"] else []
    units += [
        (attack["name"], float(eps)) for attack in job["attacks"] for eps in attack["eps_255"]
    ]
    to_do = progress.unfinished(units)
    if CLEAN in to_do:
        clean = ids_of(model_ids, "clean", 0, "clean")
        progress.save(CLEAN, [measure(model, model_spec, split["images"], ids=clean)], False)
    keep = {(name, float(eps)) for name, eps in job["keep"]}
    for attack in job["attacks"]:
        name, spec = attack["name"], attack["spec"]
        eps_to_do = [eps for eps in attack["eps_255"] if (name, float(eps)) in to_do]
        if not eps_to_do:
            continue
        started = time.perf_counter()
        for result in attack_each_eps(
            attacked, split["images"], split["labels"], spec, eps_to_do,
            spec["attacker_seed"], spec["batch_size"], device, fast_path,
        ):  # fmt: skip
            eps = result["eps_255"]
            logging.info(
                "%s at eps %g/255: objective %.4f -> %.4f", name, eps,
                result["objective_clean"], result["objective_adversarial"],
            )  # fmt: skip
            # seconds crafting this set; the first eps of an attempt includes the clean set-up
            source = {"attack": spec, "source_model_spec_hash": spec_hash(model_spec),
                      "seconds_crafting": time.perf_counter() - started}  # fmt: skip
            described = attack_record(result | source)
            threat = BREAKING if eps == job["breaking_eps_255"] else "whitebox"
            ids = ids_of(model_ids, name, eps, threat)
            records = [measure(model, model_spec, result["images"], ids=ids, attack=described)]
            if eps == job["main_eps_255"]:
                for index, (member, member_spec) in enumerate(members):
                    ids = ids_of(model_ids, name, eps, "member", f"member{index}")
                    records.append(
                        measure(member, member_spec, result["images"], ids=ids, attack=described)
                    )
            unit = (name, float(eps))
            if unit in keep:
                save_adversarial_set(progress.set_path(unit), result, split, source)
            progress.save(unit, records, unit in keep)
            started = time.perf_counter()
    for unit in keep:
        progress.deliver_set(unit, Path(sets_dir) / set_name(*unit))
    return [entry for unit in units for entry in progress.records(unit)]


def members_job(
    load: LoadModel,
    split: dict,
    job: dict,
    evaluation: dict,
    model_ids: dict,
    device: torch.device,
    fast_path: FastPath,
    progress: JobProgress,
) -> list[dict]:
    """Records of an ensemble's members job (`job`: robdml.specs.members_job_spec): per member,
    the member alone on the clean test set and every member attack at each of its eps, crafted
    on that member and evaluated on the whole ensemble (robdml.worst_case counts them). Each
    unit (one member's clean set; one attack at one eps on one member) is saved in `progress`
    as soon as it is done and not run again, as in `attack_job`."""
    measure = partial(record, split=split, spec=evaluation, device=device)
    ensemble, ensemble_spec = load(None)
    units = []
    for index in range(job["members"]):
        member = f"member{index}"
        units += [(CLEAN[0], CLEAN[1], member)] if job["clean"] else []
        units += [(a["name"], float(eps), member) for a in job["attacks"] for eps in a["eps_255"]]
    to_do = progress.unfinished(units)
    for index in range(job["members"]):
        source = f"member{index}"
        if not any(unit[2] == source for unit in to_do):
            continue
        member, member_spec = load(index)
        attacked, _ = load(index)  # crafted on this copy, measured with the plain one
        if (CLEAN[0], CLEAN[1], source) in to_do:
            ids = ids_of(model_ids, "clean", 0, "member", source)
            records = [measure(member, member_spec, split["images"], ids=ids)]
            progress.save((CLEAN[0], CLEAN[1], source), records, False)
        for attack in job["attacks"]:
            name, spec = attack["name"], attack["spec"]
            eps_to_do = [eps for eps in attack["eps_255"] if (name, float(eps), source) in to_do]
            if not eps_to_do:
                continue
            for result in attack_each_eps(
                attacked, split["images"], split["labels"], spec, eps_to_do,
                spec["attacker_seed"], spec["batch_size"], device, fast_path,
            ):  # fmt: skip
                eps = result["eps_255"]
                described = attack_record(
                    result | {"attack": spec, "source_model_spec_hash": spec_hash(member_spec)}
                )
                ids = ids_of(model_ids, name, eps, "member_attack", source)
                measured = measure(ensemble, ensemble_spec, result["images"], ids=ids,
                                   attack=described)  # fmt: skip
                progress.save((name, float(eps), source), [measured], False)
    return [entry for unit in units for entry in progress.records(unit)]


def transfer_job(
    targets: list[tuple[dict, torch.nn.Module, dict]],
    sets: list[tuple[str, str | Path]],
    source: dict,
    evaluation: dict,
    device: torch.device,
    progress: JobProgress,
) -> list[dict]:
    """Records of every adversarial set in `sets` ((attack name, path), crafted on the model
    `source`, {defense, seed}) evaluated on every target ((ids, model, spec)). Each unit
    (one set on one target) is saved in `progress` as soon as it is done, and one an earlier
    attempt saved is not run again; the caller removes `progress` once it has written the
    records. Each set is read once per attempt, also when all its units are done (its eps
    names them)."""
    records = []
    for name, path in sets:
        adversarial = load_adversarial_set(path)
        described = attack_record(adversarial)
        eps = float(adversarial["eps_255"])
        units = [(name, eps, f"{ids['defense']}/seed{ids['seed']}") for ids, _, _ in targets]
        to_do = progress.unfinished(units)
        for unit, (target_ids, model, model_spec) in zip(units, targets, strict=True):
            if unit in to_do:
                ids = ids_of(target_ids, name, eps, "transfer", source_model=source)
                measured = record(
                    model, model_spec, adversarial["images"], adversarial, ids=ids,
                    spec=evaluation, device=device, attack=described,
                )  # fmt: skip
                progress.save(unit, [measured], False)
            records += progress.records(unit)
    return records
