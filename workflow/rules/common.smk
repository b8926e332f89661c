"""Config validation, path patterns, target lists and resources shared by all rules."""

import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from robdml import resources as cost_model
from robdml.config import (
    DEFAULT_CONFIG,
    ConfigError,
    attack_spec,
    device_option,
    evaluation_spec,
    load_schema,
    read_yaml,
    suite_attacks,
    train_spec,
    validate_config,
    without_counts,
)

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
SRC = Path(workflow.basedir) / "src"
try:
    for path in workflow.configfiles:  # Snakemake's loader lets a duplicate key win
        read_yaml(path)
    overlays = [path for path in workflow.configfiles if Path(path) != DEFAULT_CONFIG]
    config.update(
        validate_config(
            config,
            load_schema(SCHEMA),
            source=" + ".join(map(str, overlays or [DEFAULT_CONFIG])),
        )
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None

SEEDS = config["run"]["seeds"]


def one_of(names):
    """Wildcard regex matching exactly these names (nothing when empty)."""
    return "|".join(names) if names else "(?!)"


wildcard_constraints:  # the selected names only: a typo in a target path matches no rule
    dataset=one_of(config["datasets"]),
    backbone=one_of(config["backbones"]),
    defense=one_of(config["defenses"]),
    attack=r"[a-z][a-z0-9_]*",
    seed=one_of([str(seed) for seed in SEEDS]),


def check_target_names(targets):
    """A target path naming an unselected dataset, backbone, defense or seed stops with one
    line naming it (a bare MissingRuleException would not say which part is wrong)."""
    selected = {
        "dataset": list(config["datasets"]),
        "backbone": list(config["backbones"]),
        "defense": list(config["defenses"]),
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
ADVERSARIAL = "results/adversarial/{dataset}/{backbone}/{defense}/seed{seed}/{attack}"
SOURCE_ADVERSARIAL = (  # a transfer source's adversarial test sets
    "results/adversarial/{dataset}/{backbone}/{source_defense}/seed{source_seed}/{attack}"
)
METRICS = "results/metrics/{dataset}/{backbone}/{defense}/seed{seed}"
LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"
GPUS = 1 if config["device"] == "cuda" else 0


def cpus_per_gpu(wildcards, threads):
    """SLURM `--cpus-per-gpu` of a GPU rule: its threads; 0 (no GPU, so unused) on CPU."""
    return threads if GPUS else 0


# Resources: the cost model of robdml.resources (README "Resources"), each request times
# Snakemake's `attempt` (a resubmitted job asks for more). benchmarks/gpu_hours.py sums them.
def train_runtime(wildcards, attempt):
    w = wildcards
    return cost_model.train_runtime(config, w.dataset, w.backbone, w.defense, attempt)


def attack_runtime(wildcards, attempt):
    """The whole model, over the attack's eps (every eps for the suites, else the main one)."""
    w, n_eps = wildcards, len(eps_of(wildcards.attack))
    return cost_model.attack_runtime(
        config, w.dataset, w.backbone, w.defense, w.attack, n_eps, attempt
    )


def member_attack_runtime(wildcards, attempt):
    """One ensemble member alone, at the main eps."""
    w = wildcards
    return cost_model.attack_runtime(
        config, w.dataset, w.backbone, w.defense, w.attack, 1, attempt, member=True
    )


def evaluate_runtime(n_sets, member=False):
    """Runtime of an evaluate rule whose jobs each evaluate `n_sets` test sets."""

    def runtime(wildcards, attempt):
        w = wildcards
        return cost_model.evaluate_runtime(
            config, w.dataset, w.backbone, w.defense, n_sets, attempt, member
        )

    return runtime


def fixed_runtime(kind):
    """`prepare` or `report`: fixed minutes, times the attempt."""
    return lambda wildcards, attempt: cost_model.fixed_runtime(config, kind, attempt)


def mem_mb(kind):
    """mem_mb of a `small`, `prepare`, `train`, `evaluate` or `tsne` rule."""
    return lambda wildcards, attempt: cost_model.mem_mb(
        config, kind, wildcards.get("dataset"), attempt=attempt
    )


def attack_mem_mb(wildcards, attempt):
    """An attack keeps one adversarial set per eps of its job (a member's: the main eps)."""
    n_eps = 1 if wildcards.get("member") is not None else len(eps_of(wildcards.attack))
    return cost_model.mem_mb(config, "attack", wildcards.dataset, n_eps, attempt)


EPS = [f"{eps:g}" for eps in config["evaluation"]["eps_255"]]  # path form: 8, 0.5
MAIN_EPS = f"{config['report']['main_eps_255']:g}"
SWEEP_ATTACKS = suite_attacks(
    config
)  # the suites run at every eps, the others at the main eps
MAIN_EPS_ATTACKS = [a for a in config["attacks"] if a not in SWEEP_ATTACKS]


def per_eps(pattern, eps_list=EPS):
    """One path per eps; the other wildcards stay wildcards."""
    return [pattern.replace("{eps}", eps) for eps in eps_list]


def eps_of(attack):
    """Sweep attacks run at every eps, the others at the main eps only."""
    return EPS if attack in SWEEP_ATTACKS else [MAIN_EPS]


MODEL_IDS = [
    {"dataset": d, "backbone": b, "defense": f, "seed": s}
    for d in config["datasets"]
    for b in config["backbones"]
    for f in config["defenses"]
    for s in SEEDS
]
CLEAN_METRICS = [f"{METRICS}/clean.json".format(**ids) for ids in MODEL_IDS]
# kept adversarial sets: one evaluate job per model (workflow/rules/evaluate.smk)
WHITEBOX_PER_MODEL = config["keep_adversarial_images"]
WHITEBOX = [(a, eps) for a in config["attacks"] for eps in eps_of(a)]
WHITEBOX_SETS = [
    f"{ADVERSARIAL}/eps{eps}.pt".replace("{attack}", a) for a, eps in WHITEBOX
]
WHITEBOX_METRICS = [f"{METRICS}/{a}/eps{eps}.json" for a, eps in WHITEBOX]
ATTACK_METRICS = [path.format(**ids) for ids in MODEL_IDS for path in WHITEBOX_METRICS]
TRANSFER = "transfer/{source_defense}_seed{source_seed}/{attack}"


def transfer_sources(ids):
    """(defense, seed) of the source models whose examples are transferred to model `ids`."""
    offset = config["transfer"]["source_seed_offset"]
    source_seed = SEEDS[(SEEDS.index(ids["seed"]) + offset) % len(SEEDS)]
    return [
        (defense, source_seed)
        for defense in config["transfer"]["source_defenses"]
        if (defense, source_seed) != (ids["defense"], ids["seed"])
    ]


TRANSFER_METRICS = [
    f"{METRICS}/{TRANSFER}/eps{{eps}}.json".format(
        **ids, source_defense=sd, source_seed=ss, attack=a, eps=eps
    )
    for ids in MODEL_IDS
    for sd, ss in transfer_sources(ids)
    for a in config["transfer"]["attacks"]
    for eps in eps_of(a)
]
MEMBER = "member{member}"
MEMBER_ADVERSARIAL = (  # crafted on one ensemble member alone
    "results/adversarial/{dataset}/{backbone}/{defense}/seed{seed}/member{member}/{attack}"
)
ENSEMBLE_IDS = [
    {**ids, "member": m}
    for ids in MODEL_IDS
    if config["defenses"][ids["defense"]].get("members", 1) > 1
    for m in range(config["defenses"][ids["defense"]]["members"])
]
MEMBER_ATTACKS = config["ensemble_members"]["attacks"]
MEMBER_OUTPUTS = [f"{METRICS}/{MEMBER}/clean.json"] + [
    f"{METRICS}/{MEMBER}/{attack}/eps{MAIN_EPS}.json" for attack in config["attacks"]
]  # a member alone: clean, then the ensemble's adversarial sets at the main eps
MEMBER_METRICS = [
    path.format(**ids)
    for ids in ENSEMBLE_IDS
    if config["ensemble_members"]["evaluate"]
    for path in MEMBER_OUTPUTS
]
FROM_MEMBER_METRICS = [
    f"{METRICS}/from_{MEMBER}/{{attack}}/eps{{eps}}.json".format(
        **ids, attack=a, eps=MAIN_EPS
    )
    for ids in ENSEMBLE_IDS
    for a in MEMBER_ATTACKS
]
ALL_METRICS = (
    CLEAN_METRICS
    + ATTACK_METRICS
    + TRANSFER_METRICS
    + MEMBER_METRICS
    + FROM_MEMBER_METRICS
)
TABLES = expand("results/tables/main.{ext}", ext=["csv", "md", "tex"])
SANITY = expand("results/sanity/sanity.{ext}", ext=["csv", "md"])
FIGURE_NAMES = ["nmi_by_defense", "nmi_vs_eps", "recall1_vs_eps"]
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
    train and attack jobs: an ensemble's jobs are the longest, started first they do not leave
    one job running alone at the end."""
    return config["defenses"][wildcards.defense].get("members", 1)


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


def as_json(spec):
    return json.dumps(spec, sort_keys=True)


def adversarial_outputs(eps_list):
    """temp() in the paper config: 224 px adversarial test sets are gigabytes each."""
    outputs = per_eps(f"{ADVERSARIAL}/eps{{eps}}.pt", eps_list)
    return outputs if config["keep_adversarial_images"] else [temp(o) for o in outputs]


def member_inputs(wildcards):
    """A member alone is evaluated on the clean test set and the ensemble's main-eps sets."""
    ids = {**wildcards, "eps": MAIN_EPS}
    return {
        "model": f"{MODEL}/model.pt".format(**ids),
        "images": [f"{DATA}/test.pt".format(**ids)]
        + [
            f"{ADVERSARIAL}/eps{{eps}}.pt".format(**ids, attack=a)
            for a in config["attacks"]
        ],
    }


def member_ids(wildcards):
    """Identifiers of a member's metrics: clean first, then one per attack (main eps)."""
    source = f"member{wildcards.member}"
    clean = json.loads(evaluation_ids(wildcards, "clean", [0], "member", source))
    attacked = [
        json.loads(evaluation_ids(wildcards, attack, [MAIN_EPS], "member", source))[0]
        for attack in config["attacks"]
    ]
    return as_json(clean + attacked)


def tsne_inputs(wildcards):
    """Models and adversarial test sets (first seed, main eps) shown in the t-SNE figure."""
    tsne = config["report"]["tsne"]
    ids = {
        **wildcards,
        "seed": SEEDS[0],
        "attack": tsne["attack"],
        "eps": MAIN_EPS,
    }
    return {
        "models": [
            f"{MODEL}/model.pt".format(**ids, defense=d) for d in tsne["defenses"]
        ],
        "adversarial": [
            f"{ADVERSARIAL}/eps{{eps}}.pt".format(**ids, defense=d)
            for d in tsne["defenses"]
        ],
        "data": f"{DATA}/test.pt".format(**ids),
    }


def whitebox_ids(wildcards):
    """Identifiers of the outputs of evaluate_model, in order (clean, then every attack, eps)."""
    clean = json.loads(evaluation_ids(wildcards, "clean", [0], "clean"))
    attacked = [
        json.loads(evaluation_ids(wildcards, attack, [eps], "whitebox"))[0]
        for attack, eps in WHITEBOX
    ]
    return as_json(clean + attacked)


def evaluation_ids(wildcards, attack, eps_list, threat, source=""):
    """Identifiers of the metrics JSONs of one evaluate job, one entry per eps; `threat` is
    clean, whitebox or transfer, `source` the model a transferred attack was crafted on.
    """
    return as_json(
        [
            {
                "dataset": wildcards.dataset,
                "backbone": wildcards.backbone,
                "defense": wildcards.defense,
                "seed": int(wildcards.seed),
                "attack": attack,
                "eps_255": float(eps),
                "threat": threat,
                "source": source,
            }
            for eps in eps_list
        ]
    )
