"""Toy metrics records and benchmark files of the table and figure tests: a grid of three
defenses x two seeds with known worst cases."""

import json

from robdml.evaluation import ids_of
from robdml.grid import Grid

SUITES = {"label_free": ["centroid", "random_target"], "label_aware": ["oracle"]}


def write_result(directory, seed, attack, eps, nmi, defense="vanilla", threat=None, source=""):
    metrics = {"nmi": nmi, "f1": nmi / 2, "recall@1": nmi, "ari": nmi - 0.5, "nmi_chance": 0.5}
    threat = threat or ("clean" if attack == "clean" else "whitebox")
    model = {"dataset": "d", "backbone": "b", "defense": defense, "seed": seed}
    if threat == "transfer":
        source_defense, source_seed = source.split("/seed")
        ids = ids_of(
            model,
            attack,
            eps,
            threat,
            source_model={"defense": source_defense, "seed": int(source_seed)},
        )
    else:
        ids = ids_of(model, attack, eps, threat, source)
    name = f"{defense}_{seed}_{attack}_{eps}_{threat}_{source.replace('/', '-')}.json"
    path = directory / name
    path.write_text(json.dumps({"records": [{"ids": ids, "metrics": metrics, "config_hash": "x"}]}))
    return path


GRID = Grid(["d"], ["b"], ["vanilla", "pgd_at", "eat"], [0, 1])


def grid_results(directory, skip=()):
    """CLEAN and WORST per defense and seed: WORST is random_target's NMI, centroid 0.05
    above it; `skip`: (defense, seed, attack) left out."""
    paths = []
    for defense, seeds in CLEAN.items():
        for seed, clean in enumerate(seeds):
            worst = WORST[defense][seed]
            for attack, nmi in (("clean", clean), ("centroid", worst + 0.05),
                                ("random_target", worst), ("oracle", worst - 0.1)):  # fmt: skip
                if (defense, seed, attack) not in skip:
                    eps = 0 if attack == "clean" else 8
                    paths.append(write_result(directory, seed, attack, eps, nmi, defense))
    return paths


def write_benchmark(root, kind, defense, seed, seconds, job=None, rss=100.0):
    path = root / kind / "d" / "b" / defense / f"seed{seed}.tsv"
    if job:
        path = path.with_suffix("") / f"{job}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds}\t0:00:00\t{rss}\t1.0\n")
    return path


CLEAN = {"vanilla": (0.90, 0.92), "pgd_at": (0.80, 0.84), "eat": (0.85, 0.85)}


WORST = {"vanilla": (0.50, 0.52), "pgd_at": (0.70, 0.74), "eat": (0.60, 0.66)}
