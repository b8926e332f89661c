"""Config validation, path patterns, target lists and resources shared by all rules."""

import json
import shlex
import sys
from functools import cache, partial
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from robdml import resources as cost_model
from robdml.config import (
    DEFAULT_CONFIG,
    ConfigError,
    check_external_files,
    load_schema,
    read_yaml,
    validate_config,
)
from robdml.adversarial import set_name
from robdml.factory import factory_file
from robdml.code_version import code_version
from robdml.io import spec_hash
from robdml.job_progress import remove_finished as remove_finished_progress
from robdml.benchmark_paths import COST_BENCHMARKS
from robdml.jobs import (
    attack_eps,
    attack_jobs,
    expected_transfer_sources,
    external_model_ids,
    has_members_job,
    members,
    job_of,
    transfer_sets,
    transfer_targets,
    tsne_set,
)
from robdml.specs import (
    attack_job_spec,
    data_spec,
    evaluation_spec,
    fast_path_options,
    members_job_spec,
    train_spec,
)

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
SRC = Path(workflow.basedir) / "src"
try:
    for path in workflow.configfiles:  # Snakemake's loader lets a duplicate key win
        read_yaml(path)
    overlays = [path for path in workflow.configfiles if Path(path) != DEFAULT_CONFIG]
    source = " + ".join(map(str, overlays or [DEFAULT_CONFIG]))
    config.update(validate_config(config, load_schema(SCHEMA), source=source))
    check_external_files(config, source)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

SEEDS = config["run"]["seeds"]
EXTERNAL_MODELS = list(config["external_models"])


def one_of(names):
    """Wildcard regex matching exactly these names (nothing when empty)."""
    return "|".join(names) if names else "(?!)"


wildcard_constraints:  # the selected names only: a typo in a target path matches no rule
    dataset=one_of(config["datasets"]),
    backbone=one_of(config["backbones"]),
    defense=one_of([*config["defenses"], *EXTERNAL_MODELS]),
    attack=r"[a-z][a-z0-9_]*",
    seed=one_of([str(seed) for seed in SEEDS]),


def check_target_names(targets):
    """A target path naming an unselected dataset, backbone, defense or seed stops with one
    line naming it (a bare MissingRuleException would not say which part is wrong)."""
    selected = {
        "dataset": list(config["datasets"]),
        "backbone": list(config["backbones"]),
        "defense": [*config["defenses"], *EXTERNAL_MODELS],
        "seed": [f"seed{seed}" for seed in SEEDS],
    }
    for target in targets:
        parts = Path(target).parts
        if parts[:2] not in [
            ("results", kind) for kind in ("models", "adversarial", "metrics")
        ]:
            continue
        for (noun, names), part in zip(selected.items(), parts[2:6]):
            if part not in names:
                raise WorkflowError(
                    f"{target}: no such {noun} {part!r} in run.{noun}s "
                    f"(selected: {', '.join(names)})"
                )


def command_line_targets():
    """The targets given on the command line (Snakemake sets its DAG settings only after it
    has read the Snakefile, so they are parsed here with its own argument parser)."""
    from snakemake.cli import get_argument_parser

    try:
        args, _ = get_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:  # not the snakemake command line
        return []
    return list(getattr(args, "targets", None) or [])


check_target_names(command_line_targets())


DATA = f"{config['data_root']}/{{dataset}}"
WEIGHTS = f"{config['weights_root']}/{{arch}}/{{weights}}.pth"
MODEL = "results/models/{dataset}/{backbone}/{defense}/seed{seed}"
ADVERSARIAL = "results/adversarial/{dataset}/{backbone}/{defense}/seed{seed}/{job}"
METRICS = "results/metrics/{dataset}/{backbone}/{defense}/seed{seed}"
LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"
GPUS = 1 if config["device"] == "cuda" else 0


def cpus_per_gpu(wildcards, threads):
    """SLURM `--cpus-per-gpu` of a GPU rule: its threads; 0 (no GPU, so unused) on CPU."""
    return threads if GPUS else 0


# Resources: the cost model of robdml.resources (docs/cluster.md "Resources"), each request times
# Snakemake's `attempt` (a resubmitted job asks for more). benchmarks/gpu_hours.py sums them.
def train_runtime(wildcards, attempt):
    w = wildcards
    return cost_model.train_runtime(config, w.dataset, w.backbone, w.defense, attempt)


# The DAG asks for these once per job (thousands in the paper grid): computed once per key.
@cache
def job_spec(dataset, backbone, defense, seed, job):
    return as_json(attack_job_spec(config, dataset, backbone, defense, int(seed), job))


@cache
def attack_job_seconds(dataset, backbone, defense, job):
    return cost_model.attack_job_seconds(config, dataset, backbone, defense, job)


def attack_runtime(wildcards, attempt):
    w = wildcards
    seconds = attack_job_seconds(w.dataset, w.backbone, w.defense, w.job)
    return cost_model.minutes(config, seconds, attempt)


def members_runtime(wildcards, attempt):
    w = wildcards
    seconds = cost_model.members_job_seconds(config, w.dataset, w.backbone, w.defense)
    return cost_model.minutes(config, seconds, attempt)


def transfer_runtime(wildcards, attempt):
    w = wildcards
    seconds = cost_model.transfer_job_seconds(
        config, w.dataset, w.backbone, w.defense, int(w.seed)
    )
    return cost_model.minutes(config, seconds, attempt)


def fixed_runtime(kind):
    """`prepare` or `report`: fixed minutes, times the attempt."""
    return lambda wildcards, attempt: cost_model.fixed_runtime(config, kind, attempt)


def mem_mb(kind):
    """mem_mb of a `small`, `prepare`, `train`, `evaluate` or `tsne` rule."""
    return lambda wildcards, attempt: cost_model.mem_mb(
        config, kind, wildcards.get("dataset"), attempt=attempt
    )


def attack_mem_mb(wildcards, attempt):
    """An attack keeps one adversarial set per eps of the attack it runs."""
    w = wildcards
    return cost_model.mem_mb(
        config, "attack", w.dataset, eps_per_attack(w.job), attempt
    )


@cache
def eps_per_attack(job):
    """The most eps any attack of an attack job runs."""
    return max(len(attack_eps(config, attack)) for attack in attack_jobs(config)[job])


ATTACK_JOBS = list(attack_jobs(config))
MODEL_IDS = [
    {"dataset": d, "backbone": b, "defense": f, "seed": s}
    for d in config["datasets"]
    for b in config["backbones"]
    for f in config["defenses"]
    for s in SEEDS
]
EXTERNAL_IDS = external_model_ids(config)  # attacked and evaluated, never trained
EVALUATED_IDS = MODEL_IDS + EXTERNAL_IDS
MODELS = [f"{MODEL}/model.pt".format(**ids) for ids in EVALUATED_IDS]
MEMBERS_JOB_DEFENSES = [d for d in config["defenses"] if has_members_job(config, d)]
TRANSFER_SETS = transfer_sets(config)
TRANSFER_SOURCES = [ids for ids in MODEL_IDS if transfer_targets(config, **ids)]
ALL_METRICS = (
    [
        f"{METRICS}/{job}.json".format(**ids)
        for ids in EVALUATED_IDS
        for job in ATTACK_JOBS
    ]
    + [
        f"{METRICS}/members.json".format(**ids)
        for ids in MODEL_IDS
        if ids["defense"] in MEMBERS_JOB_DEFENSES
    ]
    + [f"{METRICS}/transfer.json".format(**ids) for ids in TRANSFER_SOURCES]
)
TABLES = expand("results/tables/main.{ext}", ext=["csv", "md", "tex"])
SANITY = expand("results/sanity/sanity.{ext}", ext=["csv", "md"])
SUMMARY = "results/summary.md"
CARD = "results/cards/{dataset}/{backbone}_{defense}_seed{seed}"  # + .json, .md
EXTERNAL_CARD = "results/cards/{dataset}/{defense}"  # an external model's name
CARD_STEMS = [(ids, CARD.format(**ids)) for ids in MODEL_IDS] + [
    (ids, EXTERNAL_CARD.format(**ids)) for ids in EXTERNAL_IDS
]
CARDS = [f"{stem}.{ext}" for _, stem in CARD_STEMS for ext in ("json", "md")]
TRAINING_CURVES = expand("results/figures/training_curves.{ext}", ext=["png", "pdf"])
FIGURE_NAMES = [
    "nmi_by_defense",
    "nmi_vs_eps",
    "ari_vs_eps",
    "recall1_vs_eps",
    "tradeoff",
    "cost",
]
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "pdf"])
TSNE = (
    expand(
        "results/figures/tsne_{dataset}_{backbone}.{ext}",
        dataset=config["datasets"],
        backbone=config["backbones"],
        ext=["png", "pdf"],
    )
    if config["report"]["tsne"]["defenses"]
    else []
)  # none of its defenses selected


def n_members(wildcards):
    """Ensemble size of a defense (1 for single-model defenses); also the `priority` of its
    train, attack and members jobs: an ensemble's jobs are the longest, started first they do
    not leave one job running alone at the end."""
    return members(config, wildcards.defense)


def weights_files(backbones):
    """The ImageNet weights files these backbones start from (none trained from scratch)."""
    entries = [config["backbones"][name] for name in backbones]
    return sorted(
        {
            WEIGHTS.format(arch=entry["arch"], weights=entry["weights"])
            for entry in entries
            if entry["weights"] is not None
        }
    )


def step_script(name):
    """A step script as an input whose file time never reruns a job (`ancient`), so a
    fresh clone over prepared data or results plans nothing (`code_of` follows content).
    """
    return ancient(f"{SRC}/{name}.py")


def code_of(name):
    """A params entry naming by content the code that a step script runs (see
    robdml.code_version): an edit to the script or to a robdml module it imports reruns its
    jobs, a comment-only edit does not."""
    return code_version(SRC / f"{name}.py", SRC)


def sized(model_ids):
    """The models whose dataset states its counts, so that the cost model can size their jobs
    (the jobs of the others stop with one line naming the missing key)."""
    return [ids for ids in model_ids if "counts" in config["datasets"][ids["dataset"]]]


def resume_retries(seconds):
    """`retries:` of a resumable rule (train, attack, members, transfer) whose longest job, of
    `seconds` of work, needs several time-limited attempts: as many as it takes, plus one
    for a failure. None (the profile's `retries`) when every job fits the limit."""
    needed = max(map(partial(cost_model.attempts, config), seconds), default=1)
    return needed if needed > 1 else None


def as_json(spec):
    return json.dumps(spec, sort_keys=True)


def adversarial_directory():
    """The sets an attack job keeps; temp() in the paper config, where only transfer and
    t-SNE read a few of them (224 px adversarial test sets are gigabytes each)."""
    directory_ = directory(ADVERSARIAL)
    return directory_ if config["keep_adversarial_images"] else temp(directory_)


def model_ids(wildcards):
    w = wildcards
    return as_json(
        {
            "dataset": w.dataset,
            "backbone": w.backbone,
            "defense": w.defense,
            "seed": int(w.seed),
        }
    )


def set_path(ids, attack, eps_255):
    """An adversarial set inside the directory of the attack job that crafts it."""
    directory_ = ADVERSARIAL.format(**ids, job=job_of(config, attack))
    return f"{directory_}/{set_name(attack, eps_255)}"


def transfer_target_ids(wildcards):
    w = wildcards
    return [
        {"dataset": w.dataset, "backbone": w.backbone, "defense": d, "seed": s}
        for d, s in transfer_targets(
            config, w.dataset, w.backbone, w.defense, int(w.seed)
        )
    ]


def transfer_inputs(wildcards):
    """A transfer job reads its source's kept sets and every target model."""
    source = {**wildcards, "seed": int(wildcards.seed)}
    jobs = sorted({job_of(config, attack) for attack, _ in TRANSFER_SETS})
    return {
        "sets": [ADVERSARIAL.format(**source, job=job) for job in jobs],
        "models": [
            f"{MODEL}/model.pt".format(**ids) for ids in transfer_target_ids(wildcards)
        ],
    }


def transfer_set_paths(wildcards):
    source = {**wildcards, "seed": int(wildcards.seed)}
    return [set_path(source, attack, eps) for attack, eps in TRANSFER_SETS]


def tsne_inputs(wildcards):
    """Models and adversarial test sets (first seed, main eps) shown in the t-SNE figure."""
    attack, eps = tsne_set(config)
    shown = [
        {**wildcards, "seed": SEEDS[0], "defense": d}
        for d in config["report"]["tsne"]["defenses"]
    ]
    return {
        "models": [f"{MODEL}/model.pt".format(**ids) for ids in shown],
        "sets": [
            ADVERSARIAL.format(**ids, job=job_of(config, attack)) for ids in shown
        ],
        "data": f"{DATA}/test.pt".format(**wildcards),
    }


def tsne_set_paths(wildcards):
    attack, eps = tsne_set(config)
    shown = [
        {**wildcards, "seed": SEEDS[0], "defense": d}
        for d in config["report"]["tsne"]["defenses"]
    ]
    return [set_path(ids, attack, eps) for ids in shown]
