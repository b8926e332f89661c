"""What every job asks the scheduler for: runtime from a cost model, memory from the image sets
it holds (README "Resources"). Pure arithmetic on the resolved config: the Snakefile's planning
imports it, so it must not import torch or any other scientific package.

Runtime of a train, attack or evaluate job, in minutes, on its `attempt` (1, then 2, ... when
Snakemake resubmits it):

    runtime = ceil(attempt x (startup_min + safety_factor x seconds / 60))
    seconds = images x passes / throughput + k-means seconds
    throughput = throughput_img_per_s[device][arch] x (throughput_image_size[device] / image_size)^2

`passes` counts forward+backward passes of one model per image (weights' gradients included):
an input-gradient pass (a PGD step) costs `pass_cost.input_gradient` of one, a forward pass
alone `pass_cost.forward`, a gradient-of-gradient pass (GAL, TRS) `pass_cost.double_backprop`.
An ensemble's members each pay their own passes. A k-means of N points in k clusters and d
dimensions costs 2 N k d `kmeans_iterations` flops at `kmeans_gflop_per_s`. The other rules
ask for fixed times (`runtime_min`). Memory: a fixed amount per kind of job plus the bytes of
the whole image sets it holds at its peak, also times `attempt`.
"""

import math
from collections.abc import Callable

from robdml import jobs
from robdml.config import ConfigError, defense_spec

Passes = Callable[[dict, dict], float]


def shared_split(params: dict) -> float:
    """Fraction of a batch each member of an EAT-style ensemble trains on: (M - 1) / M with a
    data split (member i skips part i), 1 without one."""
    members = params.get("members", 1)
    split = params.get("split", "none")
    return (members - 1) / members if split != "none" and members > 1 else 1.0


def ensemble_at(params: dict, cost: dict) -> float:
    """EAT and the ensemble-AT baselines: every member crafts (alone or as part of the shared
    ensemble objective) and trains on its share of the batch."""
    members, steps = params.get("members", 1), params["attack"]["steps"]
    share = shared_split(params)
    if params.get("transfer") == "ensemble_shift":  # crafting runs every member on the whole batch
        return members * (cost["forward"] + steps * cost["input_gradient"]) + members * share
    return members * share * (steps * cost["input_gradient"] + 1)


def trs(params: dict, cost: dict) -> float:
    """Input gradients with their graph on the clean batch; with `plus_adv` the smoothness PGD
    on half the batch (a double-backprop pass per step and member) and the gradients again."""
    members, double = params["members"], cost["double_backprop"]
    if not params["plus_adv"]:
        return members * double
    return members * double * (2 + params["smoothness_attack"]["steps"] / 2)


def dverge(params: dict, cost: dict) -> float:
    """Per member: the target features, the distillation descent; then every member trains on
    each peer's distilled batch; with `plus_adv` also PGD-AT on its own examples."""
    members, steps = params["members"], params["distillation"]["steps"]
    passes = members * (cost["forward"] + steps * cost["input_gradient"]) + members * (members - 1)
    if params["plus_adv"]:
        passes += members * (params["attack"]["steps"] * cost["input_gradient"] + 1)
    return passes


# Forward+backward-pass equivalents per training image per epoch, all members together, read
# off each defense's `loss` (src/robdml/defenses/); P = the training attack's steps. A new
# defense adds its line here (README "Adding a defense or an attack").
TRAIN_PASSES: dict[str, Passes] = {
    "vanilla": lambda p, c: 1,
    "mixup": lambda p, c: 1,  # one pass on the mixed batch
    # PGD, the update on the adversarial batch, and a clean update when it is weighted in
    "pgd_at": lambda p, c: p["attack"]["steps"] * c["input_gradient"] + 1 + (p["clean_weight"] > 0),
    # the adversary's clean reference (no grad), PGD, the update through clean + adversarial
    "trades": lambda p, c: c["forward"] + p["attack"]["steps"] * c["input_gradient"] + 2,
    "mart": lambda p, c: p["attack"]["steps"] * c["input_gradient"] + 2,
    "est": lambda p, c: c["forward"] + p["attack"]["steps"] * c["input_gradient"] + 1,
    "act": lambda p, c: p["attack"]["steps"] * c["input_gradient"] + 1,
    # upper bound: every sample an anchor, so PGD and the update run on 3 images per sample,
    # ICS adds the clean anchors and positives
    "hm": lambda p, c: (
        c["forward"]
        + 3 * (p["attack"]["steps"] * c["input_gradient"] + 1)
        + 2 * (p["ics_weight"] > 0)
    ),
    "adp": lambda p, c: p["members"],
    "gal": lambda p, c: p["members"] * c["double_backprop"],
    "trs": trs,
    "dverge": dverge,
    "ens_at": lambda p, c: ensemble_at({**p, "split": "none"}, c),
    "ens_at_independent": lambda p, c: ensemble_at({**p, "split": "none"}, c),
    "eat": ensemble_at,
}


def train_passes(params: dict, cost: dict) -> float:
    """Forward+backward-pass equivalents per training image per epoch of a resolved defense."""
    method = params["method"]
    if method not in TRAIN_PASSES:
        raise ConfigError(f"defenses: method {method!r} has no training cost in TRAIN_PASSES")
    return float(TRAIN_PASSES[method](params, cost))


def attack_work(params: dict, n_eps: int, cost: dict) -> tuple[float, int]:
    """(passes per test image for one model, k-means runs) of one attack job over `n_eps` eps,
    as robdml.attacks.runner runs it: the clean embedding and objective once; per eps and
    restart `steps` PGD steps, an objective or embedding pass per round, and for re-fitting
    attacks a k-means per round (none when there is one restart of one round). Attacks with
    a clustering context (`kmeans_n_init`) run the clean k-means once."""
    steps, restarts = params["steps"], params["restarts"]
    refits = "refit_every" in params
    rounds = math.ceil(steps / params["refit_every"]) if refits else 1
    per_eps = restarts * steps * cost["input_gradient"] + (2 + restarts * rounds) * cost["forward"]
    passes = 2 * cost["forward"] + n_eps * per_eps
    n_init = params.get("kmeans_n_init", 0)
    kmeans = n_init  # the clean context
    if refits and (restarts > 1 or rounds > 1):
        kmeans += n_eps * restarts * rounds * n_init
    return passes, kmeans


def counts(config: dict, dataset: str) -> dict:
    """The dataset's image and class counts (datasets.<name>.counts)."""
    entry = config["datasets"][dataset]
    if "counts" not in entry:
        raise ConfigError(
            f"datasets.{dataset}: no `counts` (train_images, test_images, test_classes), "
            'which size its jobs\' resources (README "Resources")'
        )
    return entry["counts"]


def throughput(config: dict, dataset: str, backbone: str) -> float:
    """Images/s of one forward+backward pass of `backbone` at the dataset's image size."""
    resources, device = config["resources"], config["device"]
    arch = config["backbones"][backbone]["arch"]
    reference = resources["throughput_image_size"][device]
    size = config["datasets"][dataset]["image_size"]
    return resources["throughput_img_per_s"][device][arch] * (reference / size) ** 2


def kmeans_seconds(config: dict, dataset: str, backbone: str) -> float:
    """One k-means of the test set's embeddings, k = its number of classes."""
    resources = config["resources"]
    n, k = counts(config, dataset)["test_images"], counts(config, dataset)["test_classes"]
    dim = config["backbones"][backbone]["embedding_dim"]
    flops = 2 * n * k * dim * resources["kmeans_iterations"]
    return flops / (resources["kmeans_gflop_per_s"] * 1e9)


def minutes(config: dict, seconds: float, attempt: int) -> int:
    """The cost model's request for `seconds` of work: start-up, safety factor, attempt."""
    resources = config["resources"]
    return math.ceil(
        attempt * (resources["startup_min"] + resources["safety_factor"] * seconds / 60)
    )


def train_seconds(config: dict, dataset: str, backbone: str, defense: str) -> float:
    """Work of one training job (an ensemble is one job): training images x epochs x passes."""
    recipe = config["recipes"].get(dataset, config["training"])
    params = defense_spec(config, dataset, defense)
    passes = train_passes(params, config["resources"]["pass_cost"])
    images = counts(config, dataset)["train_images"] * recipe["epochs"]
    return images * passes / throughput(config, dataset, backbone)


def attack_seconds(
    config: dict,
    dataset: str,
    backbone: str,
    defense: str,
    attack: str,
    n_eps: int,
    member: bool = False,
) -> float:
    """Work of one attack job over `n_eps` eps, on the whole model or one `member` alone."""
    passes, kmeans = attack_work(config["attacks"][attack], n_eps, config["resources"]["pass_cost"])
    models = 1 if member else jobs.members(config, defense)
    images = counts(config, dataset)["test_images"] * models
    seconds = images * passes / throughput(config, dataset, backbone)
    return seconds + kmeans * kmeans_seconds(config, dataset, backbone)


def evaluate_seconds(
    config: dict, dataset: str, backbone: str, defense: str, n_sets: int, member: bool = False
) -> float:
    """Work of one evaluate job over `n_sets` test sets (clean or adversarial): per set one
    forward pass of the model (or one `member`) and the evaluation's k-means runs."""
    evaluation = config["evaluation"]
    models = 1 if member else jobs.members(config, defense)
    images = counts(config, dataset)["test_images"] * models
    forward = images * config["resources"]["pass_cost"]["forward"]
    kmeans = len(evaluation["kmeans_seeds"]) * evaluation["kmeans_n_init"]
    per_set = forward / throughput(config, dataset, backbone)
    return n_sets * (per_set + kmeans * kmeans_seconds(config, dataset, backbone))


def train_runtime(config: dict, dataset: str, backbone: str, defense: str, attempt: int = 1) -> int:
    """Minutes of one training job."""
    return minutes(config, train_seconds(config, dataset, backbone, defense), attempt)


def attack_job_seconds(config: dict, dataset: str, backbone: str, defense: str, job: str) -> float:
    """Work of one attack job (robdml.jobs): each attack over its eps, each set it crafts
    evaluated on the model and, at the main eps, on every member evaluated alone; the first
    job also evaluates the clean test set."""
    spec = jobs.attack_job_spec(config, dataset, backbone, defense, config["run"]["seeds"][0], job)
    seconds = 0.0
    for attack in spec["attacks"]:
        n_eps = len(attack["eps_255"])
        seconds += attack_seconds(config, dataset, backbone, defense, attack["name"], n_eps)
        seconds += evaluate_seconds(config, dataset, backbone, defense, n_eps)
        seconds += spec["members"] * evaluate_seconds(
            config, dataset, backbone, defense, 1, member=True
        )
    return seconds + spec["clean"] * evaluate_seconds(config, dataset, backbone, defense, 1)


def members_job_seconds(config: dict, dataset: str, backbone: str, defense: str) -> float:
    """Work of an ensemble's members job: per member its clean evaluation and each member
    attack (crafted on the member, evaluated on the ensemble)."""
    spec = jobs.members_job_spec(config, defense)
    per_member = spec["clean"] * evaluate_seconds(config, dataset, backbone, defense, 1, True)
    for attack in spec["attacks"]:
        per_member += attack_seconds(
            config, dataset, backbone, defense, attack["name"], 1, member=True
        )
        per_member += evaluate_seconds(config, dataset, backbone, defense, 1)
    return spec["members"] * per_member


def transfer_job_seconds(
    config: dict, dataset: str, backbone: str, defense: str, seed: int
) -> float:
    """Work of a transfer job: every transferred set evaluated on every target."""
    n_sets = len(jobs.transfer_sets(config))
    return sum(
        evaluate_seconds(config, dataset, backbone, target, n_sets)
        for target, _ in jobs.transfer_targets(config, dataset, backbone, defense, seed)
    )


def fixed_runtime(config: dict, kind: str, attempt: int = 1) -> int:
    """Minutes of a rule outside the cost model: `prepare` (data) or `report` (tables,
    figures, sanity, t-SNE)."""
    return attempt * config["resources"]["runtime_min"][kind]


def set_mb(config: dict, dataset: str, split: str) -> float:
    """MB of a whole uint8 image set of the dataset (`train` or `test`)."""
    entry = config["datasets"][dataset]
    images = counts(config, dataset)[f"{split}_images"]
    return images * entry["channels"] * entry["image_size"] ** 2 / 1e6


def mem_mb(
    config: dict, kind: str, dataset: str | None = None, n_eps: int = 0, attempt: int = 1
) -> int:
    """MB one job asks for. `small` (tables, figures, sanity) and `prepare` are fixed; `tsne`
    is `small` plus its test sets; `train`, `attack`, `evaluate` are `torch` (a torch process
    with its libraries, model, CUDA context and loader workers) plus the whole image sets they
    hold at their peak (`set_copies`: training sets for train, test sets for the others; an
    attack also keeps one per eps)."""
    memory = config["resources"]["mem_mb"]
    if kind in ("small", "prepare"):
        return attempt * memory[kind]
    copies = memory["set_copies"][kind] + (n_eps if kind == "attack" else 0)
    base = memory["small"] if kind == "tsne" else memory["torch"]
    split = "train" if kind == "train" else "test"
    return math.ceil(attempt * (base + copies * set_mb(config, dataset, split)))
