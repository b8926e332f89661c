"""What every job asks the scheduler for: runtime from a cost model, memory from the image sets it
holds (docs/cluster.md "Resources"). Pure arithmetic on the resolved config: the Snakefile's
planning imports it, so it must not import torch or any other scientific package.

Runtime of a train, attack, members or transfer job, in minutes, on its `attempt` (1, then 2,
... when Snakemake resubmits it):

    runtime = ceil(attempt x (startup_min + safety_factor x seconds / 60))
    seconds = images x passes / throughput + k-means seconds
    throughput = throughput_img_per_s[device][arch] x (throughput_image_size[device] / image_size)^2

`passes` counts forward+backward passes of one model per image (weights' gradients included):
an input-gradient pass (a PGD step) costs `pass_cost.input_gradient` of one, a forward pass
alone `pass_cost.forward`, a gradient-of-gradient pass (GAL, TRS) `pass_cost.double_backprop`.
An ensemble's members each pay their own passes. A k-means of N points in k clusters and d
dimensions costs 2 N k d `kmeans_iterations` flops at `kmeans_gflop_per_s`. The other rules
ask for fixed times (`runtime_min`). Memory: a fixed amount per kind of job plus the bytes of
the whole image sets it holds at its peak, times `attempt` up to `mem_mb.max_attempt_factor`.

A job's `Work` (its passes summed over images, its k-means runs) is counted once, here; the
request converts it at the stated throughput, the expected cost (`expected_seconds`) from
counted FLOPs (robdml.flops, which the caller passes in: torch counts them) at the
`resources.expected` processor's utilisation x peak, without safety factor:

    expected seconds = passes x forward_flops / pass_cost.forward / (utilisation x peak_tflops)
                       + k-means seconds
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from robdml import jobs, specs
from robdml.config import ConfigError
from robdml.threat_model import refits

Passes = Callable[[dict, dict], float]


@dataclass(frozen=True)
class Work:
    """What a job computes: `passes`, forward+backward-pass equivalents of one model summed
    over every image it processes (`pass_cost` units), and `kmeans`, k-means runs of the test
    set's embeddings."""

    passes: float = 0.0
    kmeans: float = 0.0

    def __add__(self, other: "Work") -> "Work":
        return Work(self.passes + other.passes, self.kmeans + other.kmeans)

    def __mul__(self, times: float) -> "Work":
        return Work(times * self.passes, times * self.kmeans)

    __rmul__ = __mul__


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
# defense adds its line here (docs/extending.md "Adding a defense, an attack or a dataset").
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
    # PGD and the update on 3 images per anchor, ICS on the clean anchors and positives:
    # class-paired batches have N/2 anchors; random ones at most N (every sample an anchor)
    "hm": lambda p, c: (
        c["forward"]
        + (0.5 if p.get("batches") == "class_pairs" else 1)
        * (3 * (p["attack"]["steps"] * c["input_gradient"] + 1) + 2 * (p["ics_weight"] > 0))
    ),
    "adp": lambda p, c: p["members"],
    "gal": lambda p, c: p["members"] * c["double_backprop"],
    "trs": trs,
    "dverge": dverge,
    "eat": ensemble_at,
}


def train_passes(params: dict, cost: dict) -> float:
    """Forward+backward-pass equivalents per training image per epoch of a resolved defense."""
    method = params["method"]
    if method not in TRAIN_PASSES:
        raise ConfigError(f"defenses: method {method!r} has no training cost in TRAIN_PASSES")
    return float(TRAIN_PASSES[method](params, cost))


def attack_work(
    params: dict, n_eps: int, cost: dict, bf16_crafting: bool = False
) -> tuple[float, int]:
    """(passes per test image for one model, k-means runs) of one attack job over `n_eps` eps,
    as robdml.attacks.runner runs it: the clean embedding and objective once; per eps and
    restart `steps` PGD steps, an objective or embedding pass per round, and for re-fitting
    attacks a k-means per round (none when there is one restart of one round). Attacks with
    a clustering context (`kmeans_n_init`) run the clean k-means once. APGD crafting under
    bf16 (`bf16_crafting`) adds an fp32 forward per step, the values it decides on."""
    steps, restarts = params["steps"], params["restarts"]
    refitting = refits(params)
    rounds = math.ceil(steps / params["refit_every"]) if refitting else 1
    step = cost["input_gradient"]
    if bf16_crafting and params["schedule"] == "apgd":
        step += cost["forward"]
    per_eps = restarts * steps * step + (2 + restarts * rounds) * cost["forward"]
    passes = 2 * cost["forward"] + n_eps * per_eps
    n_init = params.get("kmeans_n_init", 0)
    kmeans = n_init  # the clean context
    if refitting and (restarts > 1 or rounds > 1):
        kmeans += n_eps * restarts * rounds * n_init
    return passes, kmeans


def counts(config: dict, dataset: str) -> dict:
    """The dataset's image and class counts (datasets.<name>.counts)."""
    entry = config["datasets"][dataset]
    if "counts" not in entry:
        raise ConfigError(
            f"datasets.{dataset}: no `counts` (train_images, test_images, test_classes), "
            'which size its jobs\' resources (docs/cluster.md "Resources")'
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
    """The cost model's request for `seconds` of work: start-up, safety factor, attempt; never
    more than the partition's `time_limit_min` (a longer job would never start: it resumes over
    several attempts instead, see `attempts`)."""
    return min(config["resources"]["time_limit_min"], unlimited_minutes(config, seconds, attempt))


def unlimited_minutes(config: dict, seconds: float, attempt: int = 1) -> int:
    resources = config["resources"]
    return math.ceil(
        attempt * (resources["startup_min"] + resources["safety_factor"] * seconds / 60)
    )


def attempts(config: dict, seconds: float) -> int:
    """Jobs of the time limit that `seconds` of work may need: each attempt pays the start-up
    again and resumes from the last finished unit (an epoch; an attack at one eps)."""
    resources = config["resources"]
    limit = resources["time_limit_min"]
    if unlimited_minutes(config, seconds) <= limit:
        return 1
    work_per_attempt = limit - resources["startup_min"]
    return math.ceil(resources["safety_factor"] * seconds / 60 / work_per_attempt)


def train_work(config: dict, dataset: str, defense: str) -> Work:
    """One training job (an ensemble is one job): training images x epochs x passes."""
    recipe = config["recipes"].get(dataset, config["training"])
    params = specs.defense_spec(config, dataset, defense)
    passes = train_passes(params, config["resources"]["pass_cost"])
    return Work(passes=counts(config, dataset)["train_images"] * recipe["epochs"] * passes)


def crafting_work(
    config: dict, dataset: str, defense: str, attack: str, n_eps: int, member: bool = False
) -> Work:
    """One attack over `n_eps` eps on the test set, on the whole model or one `member` alone."""
    bf16 = config["device"] == "cuda" and config["gpu"]["autocast_bf16"]
    params, cost = config["attacks"][attack], config["resources"]["pass_cost"]
    passes, kmeans = attack_work(params, n_eps, cost, bf16)
    models = 1 if member else jobs.members(config, defense)
    return Work(counts(config, dataset)["test_images"] * models * passes, kmeans)


def evaluation_work(
    config: dict, dataset: str, defense: str, n_sets: int, member: bool = False
) -> Work:
    """Evaluating `n_sets` test sets (clean or adversarial): per set one forward pass of the
    model (or one `member`) and the evaluation's k-means runs."""
    evaluation = config["evaluation"]
    models = 1 if member else jobs.members(config, defense)
    images = counts(config, dataset)["test_images"] * models
    forward = images * config["resources"]["pass_cost"]["forward"]
    kmeans = len(evaluation["kmeans_seeds"]) * evaluation["kmeans_n_init"]
    return n_sets * Work(forward, kmeans)


def attack_job_work(config: dict, dataset: str, backbone: str, defense: str, job: str) -> Work:
    """One attack job (robdml.jobs): each attack over its eps, each set it crafts evaluated on
    the model and, at the main eps, on every member evaluated alone; the first job also
    evaluates the clean test set."""
    spec = specs.attack_job_spec(config, dataset, backbone, defense, config["run"]["seeds"][0], job)
    work = spec["clean"] * evaluation_work(config, dataset, defense, 1)
    for attack in spec["attacks"]:
        n_eps = len(attack["eps_255"])
        work += crafting_work(config, dataset, defense, attack["name"], n_eps)
        work += evaluation_work(config, dataset, defense, n_eps)
        work += spec["members"] * evaluation_work(config, dataset, defense, 1, member=True)
    return work


def members_job_work(config: dict, dataset: str, defense: str) -> Work:
    """An ensemble's members job: per member its clean evaluation and each member attack over
    its eps (crafted on the member, evaluated on the ensemble)."""
    spec = specs.members_job_spec(config, defense)
    per_member = spec["clean"] * evaluation_work(config, dataset, defense, 1, member=True)
    for attack in spec["attacks"]:
        n_eps = len(attack["eps_255"])
        per_member += crafting_work(config, dataset, defense, attack["name"], n_eps, member=True)
        per_member += evaluation_work(config, dataset, defense, n_eps)
    return spec["members"] * per_member


def transfer_job_work(config: dict, dataset: str, backbone: str, defense: str, seed: int) -> Work:
    """A transfer job: every transferred set evaluated on every target."""
    n_sets = len(jobs.transfer_sets(config))
    targets = jobs.transfer_targets(config, dataset, backbone, defense, seed)
    return sum((evaluation_work(config, dataset, target, n_sets) for target, _ in targets), Work())


def work_seconds(config: dict, dataset: str, backbone: str, work: Work) -> float:
    """Seconds of `work` at the stated throughput: what the requests are made of."""
    k_means = work.kmeans * kmeans_seconds(config, dataset, backbone)
    return work.passes / throughput(config, dataset, backbone) + k_means


def expected_seconds(
    config: dict, dataset: str, backbone: str, work: Work, forward_flops: float
) -> float:
    """Seconds `work` is expected to take on the config device's `resources.expected`
    processor, without safety factor or start-up: its passes' FLOPs at utilisation x peak (a
    forward pass is `forward_flops`, so one forward+backward is 1 / pass_cost.forward of
    them), plus its k-means (CPU) as the cost model times them."""
    resources = config["resources"]
    processor = resources["expected"][config["device"]]
    flops = work.passes * forward_flops / resources["pass_cost"]["forward"]
    flop_per_s = processor["utilisation"] * processor["peak_tflops"] * 1e12
    return flops / flop_per_s + work.kmeans * kmeans_seconds(config, dataset, backbone)


def expected_minutes(config: dict, seconds: float) -> float:
    """Expected minutes of one job doing `seconds` of work: its start-up once, nothing else."""
    return config["resources"]["startup_min"] + seconds / 60


def train_seconds(config: dict, dataset: str, backbone: str, defense: str) -> float:
    """Seconds of one training job at the stated throughput (the request's basis)."""
    return work_seconds(config, dataset, backbone, train_work(config, dataset, defense))


def train_runtime(config: dict, dataset: str, backbone: str, defense: str, attempt: int = 1) -> int:
    """Minutes of one training job."""
    return minutes(config, train_seconds(config, dataset, backbone, defense), attempt)


def attack_job_seconds(config: dict, dataset: str, backbone: str, defense: str, job: str) -> float:
    """Seconds of one attack job at the stated throughput."""
    work = attack_job_work(config, dataset, backbone, defense, job)
    return work_seconds(config, dataset, backbone, work)


def members_job_seconds(config: dict, dataset: str, backbone: str, defense: str) -> float:
    """Seconds of an ensemble's members job at the stated throughput."""
    return work_seconds(config, dataset, backbone, members_job_work(config, dataset, defense))


def transfer_job_seconds(
    config: dict, dataset: str, backbone: str, defense: str, seed: int
) -> float:
    """Seconds of a transfer job at the stated throughput."""
    work = transfer_job_work(config, dataset, backbone, defense, seed)
    return work_seconds(config, dataset, backbone, work)


def fixed_runtime(config: dict, kind: str, attempt: int = 1) -> int:
    """Minutes of a rule outside the cost model: `prepare` (data) or `report` (tables,
    figures, sanity, t-SNE)."""
    resources = config["resources"]
    return min(resources["time_limit_min"], attempt * resources["runtime_min"][kind])


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
    # a job resumed after its time limit needs no more memory; one short of memory needs more
    factor = min(attempt, memory["max_attempt_factor"])
    if kind in ("small", "prepare"):
        return factor * memory[kind]
    copies = memory["set_copies"][kind] + (n_eps if kind == "attack" else 0)
    base = memory["small"] if kind == "tsne" else memory["torch"]
    split = "train" if kind == "train" else "test"
    return math.ceil(factor * (base + copies * set_mb(config, dataset, split)))
