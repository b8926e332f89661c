"""What the workflow runs for each trained model, as few scheduler jobs as keep their work
apart (docs/workflow.md "How it fits together"). Torch-free: the Snakefile's planning imports it.

Per trained model, one attack job per group of attacks crafts every attack of the group at
its eps and evaluates each set it crafts in the same process (one start-up, one scheduler
slot, no adversarial set written only to be read back):
- `label_free`, `label_aware`: the attack suites, at every eps; the first job also evaluates
  the clean test set, and the `sanity.breaking_attacks` also probe check (a)'s breaking eps
  when it lies outside the sweep;
- `stronger`: check (b)'s stronger variants of the suites' attacks, at the main eps;
- `other`: attacks outside the suites (transfer, ensemble-member or t-SNE attacks), main eps.
Changing an attack reruns the job of its group (and the report), nothing else.
An ensemble gets one `members` job (its members alone, and attacks crafted on one member), a
transfer source one `transfer` job (its examples evaluated on every model they target).
Adversarial sets are written only where a later job reads them (transfer, t-SNE), or all of
them with `keep_adversarial_images`.
"""

from robdml.config import stronger_variants, suite_attacks
from robdml.threat_model import ThreatModel

# attack jobs: one per suite, named by its key, then the check's stronger variants and the rest
LABEL_FREE, LABEL_AWARE = ThreatModel.LABEL_FREE.suite, ThreatModel.LABEL_AWARE.suite
STRONGER, OTHER = "stronger", "other"


def attack_jobs(config: dict) -> dict[str, list[str]]:
    """Attack job name -> its attacks, in run order; empty groups are left out."""
    suites = config["attack_suites"]
    in_suites = suite_attacks(config)
    variants = list(stronger_variants(config))
    groups = {
        LABEL_FREE: suites[LABEL_FREE],
        LABEL_AWARE: [name for name in suites[LABEL_AWARE] if name not in suites[LABEL_FREE]],
        STRONGER: variants,
        OTHER: [name for name in config["attacks"] if name not in in_suites + variants],
    }
    return {job: attacks for job, attacks in groups.items() if attacks}


def main_eps(config: dict) -> float:
    return float(config["report"]["main_eps_255"])


def attack_eps(config: dict, attack: str) -> list[float]:
    """The suites' attacks run at every eps of the sweep, the others at the main eps only."""
    if attack in suite_attacks(config):
        return [float(eps) for eps in config["evaluation"]["eps_255"]]
    return [main_eps(config)]


def breaking_probe_eps(config: dict, attack: str) -> list[float]:
    """Check (a)'s breaking eps, for the attacks that probe it, when it lies outside the sweep
    (inside it, the whole suite runs there anyway)."""
    sanity = config["sanity"]
    eps = sanity["breaking_eps_255"]
    sweep = [float(e) for e in config["evaluation"]["eps_255"]]
    if eps is None or float(eps) in sweep or attack not in sanity["breaking_attacks"]:
        return []
    return [float(eps)]


def job_of(config: dict, attack: str) -> str:
    """The attack job that crafts `attack`."""
    return next(job for job, attacks in attack_jobs(config).items() if attack in attacks)


def members(config: dict, defense: str) -> int:
    """Ensemble size of a defense; an external model is one model."""
    if defense in config["external_models"]:
        return 1
    return config["defenses"][defense].get("members", 1)


def external_model_ids(config: dict) -> list[dict]:
    """{dataset, backbone, defense, seed} of every external model: its name in the defense's
    place, in its block, in the slot of the first run seed (it is evaluated once)."""
    return [
        {"dataset": e["dataset"], "backbone": e["backbone"], "defense": name,
         "seed": config["run"]["seeds"][0]}
        for name, e in config["external_models"].items()
    ]  # fmt: skip


def evaluated_members(config: dict, defense: str) -> int:
    """Members an attack job also evaluates alone on the sets it crafts at the main eps (0:
    none, not an ensemble or `ensemble_members.evaluate` off)."""
    n = members(config, defense)
    return n if n > 1 and config["ensemble_members"]["evaluate"] else 0


def has_members_job(config: dict, defense: str) -> bool:
    """An ensemble whose members are evaluated alone or attacked one at a time."""
    settings = config["ensemble_members"]
    return members(config, defense) > 1 and (settings["evaluate"] or bool(settings["attacks"]))


def transfer_sources(config: dict, defense: str, seed: int) -> list[tuple[str, int]]:
    """(defense, seed) of the models whose examples are transferred to model (defense, seed):
    each source defense at the seed `source_seed_offset` further on (cyclically), never the
    model itself."""
    seeds, offset = config["run"]["seeds"], config["transfer"]["source_seed_offset"]
    source_seed = seeds[(seeds.index(seed) + offset) % len(seeds)]
    return [
        (source, source_seed)
        for source in config["transfer"]["source_defenses"]
        if (source, source_seed) != (defense, seed)
    ]


def expected_transfer_sources(config: dict, models: list[dict]) -> list[dict]:
    """Per evaluated model ({dataset, backbone, defense, seed}), the transfer sources
    ({defense, seed}) whose examples it is evaluated on; none without transfer attacks. The
    tables name a missing one from this list."""
    if not config["transfer"]["attacks"]:
        return []
    return [
        {"model": model, "sources": [
            {"defense": defense, "seed": seed}
            for defense, seed in transfer_sources(config, model["defense"], model["seed"])
        ]}
        for model in models
    ]  # fmt: skip


def transfer_targets(
    config: dict, dataset: str, backbone: str, defense: str, seed: int
) -> list[tuple[str, int]]:
    """(defense, seed) of the models of the (dataset, backbone) block attacked with the
    examples crafted on (defense, seed): trained models, then external models."""
    if not config["transfer"]["attacks"]:
        return []
    candidates = [(target, s) for target in config["defenses"] for s in config["run"]["seeds"]]
    candidates += [
        (ids["defense"], ids["seed"])
        for ids in external_model_ids(config)
        if (ids["dataset"], ids["backbone"]) == (dataset, backbone)
    ]
    return [
        (target, target_seed)
        for target, target_seed in candidates
        if (defense, seed) in transfer_sources(config, target, target_seed)
    ]


def transfer_sets(config: dict) -> list[tuple[str, float]]:
    """(attack, eps) of every transferred set."""
    return [(a, eps) for a in config["transfer"]["attacks"] for eps in attack_eps(config, a)]


def tsne_set(config: dict) -> tuple[str, float]:
    return config["report"]["tsne"]["attack"], main_eps(config)


def shows_in_tsne(config: dict, defense: str, seed: int) -> bool:
    return defense in config["report"]["tsne"]["defenses"] and seed == config["run"]["seeds"][0]


def kept_sets(
    config: dict, dataset: str, backbone: str, defense: str, seed: int, job: str
) -> list[tuple[str, float]]:
    """(attack, eps) of the sets an attack job writes: every one with
    `keep_adversarial_images`, else those a transfer or t-SNE job reads."""
    crafted = [(a, eps) for a in attack_jobs(config)[job] for eps in attack_eps(config, a)]
    if config["keep_adversarial_images"]:
        return crafted
    read = set()
    if transfer_targets(config, dataset, backbone, defense, seed):
        read |= set(transfer_sets(config))
    if shows_in_tsne(config, defense, seed):
        read.add(tsne_set(config))
    return [entry for entry in crafted if entry in read]
