"""Config validation, path patterns, target lists and resources shared by all rules."""

import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from robdml.config import (
    ConfigError,
    attack_spec,
    evaluation_spec,
    load_schema,
    train_spec,
    validate_config,
)

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
SRC = Path(workflow.basedir) / "src"
try:
    config.update(
        validate_config(
            config,
            load_schema(SCHEMA),
            source=" + ".join(map(str, workflow.configfiles)),
        )
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    dataset=r"[a-z][a-z0-9_]*",
    backbone=r"[a-z][a-z0-9_]*",
    defense=r"[a-z][a-z0-9_]*",
    attack=r"[a-z][a-z0-9_]*",
    seed=r"\d+",


DATA = f"{config['data_root']}/{{dataset}}"
MODEL = "results/models/{dataset}/{backbone}/{defense}/seed{seed}"
ADVERSARIAL = "results/adversarial/{dataset}/{backbone}/{defense}/seed{seed}/{attack}"
METRICS = "results/metrics/{dataset}/{backbone}/{defense}/seed{seed}"
LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"
GPUS = 1 if config["device"] == "cuda" else 0
RUNTIME = config["resources"]["runtime_min"]


def cpus_per_gpu(wildcards, threads):
    """SLURM `--cpus-per-gpu` of a GPU rule: its threads; 0 (no GPU, so unused) on CPU."""
    return threads if GPUS else 0


EPS = [f"{eps:g}" for eps in config["evaluation"]["eps_255"]]  # path form: 8, 0.5


def per_eps(pattern):
    """One path per eps of the sweep; the other wildcards stay wildcards."""
    return [pattern.replace("{eps}", eps) for eps in EPS]


MODEL_IDS = [
    {"dataset": d, "backbone": b, "defense": f, "seed": s}
    for d in config["datasets"]
    for b in config["backbones"]
    for f in config["defenses"]
    for s in config["seeds"]
]
CLEAN_METRICS = [f"{METRICS}/clean.json".format(**ids) for ids in MODEL_IDS]
ATTACK_METRICS = [
    f"{METRICS}/{{attack}}/eps{{eps}}.json".format(**ids, attack=a, eps=eps)
    for ids in MODEL_IDS
    for a in config["attacks"]
    for eps in EPS
]
ALL_METRICS = CLEAN_METRICS + ATTACK_METRICS
TABLES = expand("results/tables/main.{ext}", ext=["csv", "md", "tex"])
FIGURE_NAMES = ["nmi_by_defense", "nmi_vs_eps", "recall1_vs_eps"]
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "pdf"])


def n_members(wildcards):
    """Ensemble size of a defense (1 for single-model defenses)."""
    return config["defenses"][wildcards.defense].get("members", 1)


def as_json(spec):
    return json.dumps(spec, sort_keys=True)


def adversarial_outputs():
    """temp() in the paper config: 224 px adversarial test sets are gigabytes each."""
    outputs = per_eps(f"{ADVERSARIAL}/eps{{eps}}.pt")
    return outputs if config["keep_adversarial_images"] else [temp(o) for o in outputs]


def evaluation_ids(wildcards, attack, eps_list):
    """Identifiers of the metrics JSONs of one evaluate job, one entry per eps."""
    return as_json(
        [
            {
                "dataset": wildcards.dataset,
                "backbone": wildcards.backbone,
                "defense": wildcards.defense,
                "seed": int(wildcards.seed),
                "attack": attack,
                "eps_255": float(eps),
            }
            for eps in eps_list
        ]
    )
