"""The narrow spec each step of the workflow is given, built from the resolved config in one
place: exactly what determines the step's output, so that nothing else reruns it (Snakemake
compares params), and the options its command takes. Torch-free: the Snakefile's planning and
the report environment build them."""

from robdml.config import deep_merge
from robdml.jobs import (
    attack_eps,
    attack_jobs,
    breaking_probe_eps,
    evaluated_members,
    kept_sets,
    main_eps,
    members,
)


def data_spec(config: dict, dataset: str) -> dict:
    """Exactly what determines a prepared dataset: its entry without `raw_files` (a new url
    must not re-prepare; a new md5 re-extracts, which does) and without `counts`."""
    return {
        k: v for k, v in without_counts(config["datasets"][dataset]).items() if k != "raw_files"
    }


def train_spec(config: dict, dataset: str, backbone: str, defense: str, seed: int) -> dict:
    """Exactly what determines a trained model: nothing else may trigger retraining. The
    dataset's recipe holds the training attack; a defense's `attack` entries override it."""
    training = dict(config["recipes"].get(dataset, config["training"]))
    del training["attack"]  # the defense's, below
    return {
        "dataset": without_counts(config["datasets"][dataset]),
        "backbone": config["backbones"][backbone],
        "training": training,
        "defense": defense_spec(config, dataset, defense),
        "seed": int(seed),
    }


def without_counts(dataset: dict) -> dict:
    """A dataset entry without `counts`, which only size resources (robdml.resources): a
    corrected count must not retrain or re-prepare anything."""
    return {key: value for key, value in dataset.items() if key != "counts"}


def defense_spec(config: dict, dataset: str, defense: str) -> dict:
    """A defense's resolved entry on `dataset`: its `attack` keys merged over the dataset
    recipe's training attack."""
    entry = config["defenses"][defense]
    if "attack" not in entry:
        return entry
    recipe = config["recipes"].get(dataset, config["training"])
    return {**entry, "attack": deep_merge(recipe["attack"], entry["attack"])}


def attack_spec(config: dict, attack: str) -> dict:
    """Exactly what determines an attack's output for a given model and eps."""
    return {
        **config["attacks"][attack],
        "attacker_seed": config["evaluation"]["attack_kmeans_seed"],
        "batch_size": config["evaluation"]["batch_size"],
    }


CRAFTING_ONLY = ("fold_batch_norm",)  # fast-path settings that training never reads


def fast_path_options(config: dict, crafting: bool = True) -> str:
    """The attack commands' fast-path options (train commands': `crafting` False, without the
    settings only crafting reads, so changing one reruns no training): one `--<key>` /
    `--no-<key>` per key of the config's `gpu` section on cuda, `cpu` section on CPU
    (robdml.fast_path parses them)."""
    section = config["gpu"] if config["device"] == "cuda" else config["cpu"]
    flags = [
        f"--{'' if on else 'no-'}{key.replace('_', '-')}"
        for key, on in sorted(section.items())
        if crafting or key not in CRAFTING_ONLY
    ]
    return " ".join(flags)


def evaluation_spec(config: dict) -> dict:
    """Exactly what determines the metrics of a given set of embeddings."""
    return config["evaluation"]


def attack_job_spec(
    config: dict, dataset: str, backbone: str, defense: str, seed: int, job: str
) -> dict:
    """Exactly what determines an attack job's records and sets (robdml.robustness)."""
    return crafting_spec(
        config, attack_jobs(config)[job], clean=job == next(iter(attack_jobs(config))),
        members=evaluated_members(config, defense),
        keep=kept_sets(config, dataset, backbone, defense, seed, job),
    )  # fmt: skip


def crafting_spec(
    config: dict, attacks: list[str], clean: bool, members: int = 0, keep: list | None = None
) -> dict:
    """What robdml.robustness.attack_job runs (an attack job's, or robdml.api's): each of
    `attacks` at its eps, then at `breaking_eps_255` where it probes it (records of threat
    'breaking', which no reported worst case reads); the clean test set if `clean`; `members`
    evaluated alone at the main eps; the (attack, eps) sets to `keep`."""
    entries = [
        {"name": a, "spec": attack_spec(config, a),
         "eps_255": attack_eps(config, a) + breaking_probe_eps(config, a)}
        for a in attacks
    ]  # fmt: skip
    probed = any(breaking_probe_eps(config, a) for a in attacks)
    return {
        "attacks": entries,
        "breaking_eps_255": float(config["sanity"]["breaking_eps_255"]) if probed else None,
        "clean": clean,
        "members": members,
        "main_eps_255": main_eps(config),
        "keep": keep or [],
    }


def members_job_spec(config: dict, defense: str) -> dict:
    """Exactly what determines an ensemble's members job."""
    return {
        "members": members(config, defense),
        "clean": config["ensemble_members"]["evaluate"],
        "attacks": [
            {"name": a, "spec": attack_spec(config, a), "eps_255": attack_eps(config, a)}
            for a in config["ensemble_members"]["attacks"]
        ],
    }
