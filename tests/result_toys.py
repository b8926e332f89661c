"""Toy metrics records and benchmark files of the table and figure tests: a grid of three
defenses x two seeds with known worst cases."""

import json

import pandas as pd

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


def suite_long_table() -> pd.DataFrame:
    """Two eps; per metric a different attack is the worst; `es` (outside every suite) is
    lowest of all and `oracle` is label-aware."""
    rows = [("clean", "clean", 0, 0.90, 0.60)]
    rows += [("centroid", "whitebox", e, 0.70 - e / 100, 0.40) for e in (8, 16)]
    rows += [("random_target", "whitebox", e, 0.75 - e / 100, 0.30) for e in (8, 16)]
    rows += [("oracle", "whitebox", e, 0.65 - e / 100, 0.35) for e in (8, 16)]
    rows += [("es", "whitebox", e, 0.10, 0.05) for e in (8, 16)]
    return pd.DataFrame(
        [
            {"dataset": "d", "backbone": "b", "defense": "v", "seed": 0, "attack": a,
             "threat": t, "eps_255": e, "source": "", "nmi": n, "ari": r, "f1": n,
             "recall@1": n, "nmi_chance": 0.5}
            for a, t, e, n, r in rows
        ]
    )  # fmt: skip


def column(markdown: str, name: str) -> list[str]:
    """The cells of one column of a Markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return [row[header.index(name)] for row in rows]
