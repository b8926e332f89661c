"""The worst case over an attack suite: the one definition that tables, figures and sanity
checks all use, so they report the same numbers.

Per model (dataset, backbone, defense, seed), eps and threat model, each metric is the minimum
over the threat model's attacks (white-box), taken per metric: the attack that minimises NMI
need not be the one that minimises R@1. The label-aware attacker knows everything the
label-free one knows, so its worst case is over both suites.
"""

import pandas as pd

MODEL = ["dataset", "backbone", "defense", "seed"]
METRICS = ["nmi", "ami", "ari", "f1", "recall@1"]
LABEL_FREE, LABEL_AWARE = "label-free", "label-aware"


def threat_models(suites: dict[str, list[str]]) -> dict[str, list[str]]:
    """Threat model -> the attacks its worst case is taken over."""
    models = {LABEL_FREE: list(suites["label_free"])}
    if suites["label_aware"]:
        models[LABEL_AWARE] = list(suites["label_free"]) + list(suites["label_aware"])
    return models


def worst_case(long: pd.DataFrame, attacks: list[str], threat_model: str = "") -> pd.DataFrame:
    """Per model and eps: every metric's minimum over `attacks`, with the attack that reached it
    (`<metric>_attack`), that attack's k-means std (`<metric>_std`, where measured), the mean
    chance NMI and how many of `attacks` were found (`n_attacks`; fewer means missing runs)."""
    rows = long[(long["threat"] == "whitebox") & long["attack"].isin(attacks)]
    keys = MODEL + ["eps_255"]
    grouped = rows.groupby(keys)
    worst = grouped["attack"].nunique().rename("n_attacks").to_frame()
    worst["nmi_chance"] = grouped["nmi_chance"].mean()
    for metric in METRICS:
        if metric not in rows:
            continue
        picked = rows.loc[grouped[metric].idxmin()].set_index(keys)
        worst[metric] = picked[metric]
        worst[f"{metric}_attack"] = picked["attack"]
        if f"{metric}_std" in picked:
            worst[f"{metric}_std"] = picked[f"{metric}_std"]
    worst = worst.reset_index()
    worst.insert(len(keys), "threat_model", threat_model)
    return worst


def suite_worst_cases(long: pd.DataFrame, suites: dict[str, list[str]]) -> pd.DataFrame:
    """worst_case for every threat model of the suites, stacked."""
    frames = [worst_case(long, attacks, name) for name, attacks in threat_models(suites).items()]
    return pd.concat(frames, ignore_index=True)
