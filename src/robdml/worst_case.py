"""The worst case over an attack suite: the one definition that tables, figures, cards and
sanity checks all use, so they report the same numbers.

Per model (dataset, backbone, defense, seed), eps and threat model, each metric is the minimum
over the threat model's attacks, taken per metric: the attack that minimises NMI need not be
the one that minimises R@1. The label-aware attacker knows everything the label-free one
knows, so its worst case is over both suites.

An attack counts however it reached the model (`ATTACKERS`): crafted on the model itself
(white-box), on one member of an ensemble and evaluated on the whole ensemble, or on another
model and transferred. An attacker with white-box access can do all three, and averaging an
ensemble's members may mask the gradients the white-box attack follows, so an ensemble scored
against its own gradients alone would be overstated.
"""

import pandas as pd

from robdml.threat_model import ThreatModel

MODEL = ["dataset", "backbone", "defense", "seed"]
METRICS = ["nmi", "ami", "ari", "f1", "recall@1"]
WHITEBOX = ("whitebox",)
ATTACKERS = ("whitebox", "member_attack", "transfer")  # record threats a worst case is over
BREAKING = "breaking"  # white-box at a breaking-eps probe: check (a) alone reads it (sanity.py)


def threat_models(suites: dict[str, list[str]]) -> dict[str, list[str]]:
    """Threat model -> the attacks its worst case is taken over."""
    label_free = list(suites[ThreatModel.LABEL_FREE.suite])
    models = {ThreatModel.LABEL_FREE: label_free}
    if suites[ThreatModel.LABEL_AWARE.suite]:
        models[ThreatModel.LABEL_AWARE] = label_free + list(suites[ThreatModel.LABEL_AWARE.suite])
    return models


def attacker_name(rows: pd.DataFrame) -> pd.Series:
    """The attack as the tables name it: 'cluster_mi', or with the model the examples were
    crafted on when it is not the evaluated one ('cluster_mi on member1', 'mi on
    vanilla/seed1')."""
    source = rows.get("source", pd.Series("", index=rows.index)).fillna("").astype(str)
    return rows["attack"].where(source == "", rows["attack"] + " on " + source)


def worst_case(
    long: pd.DataFrame,
    attacks: list[str],
    threat_model: str = "",
    attackers: tuple[str, ...] = ATTACKERS,
) -> pd.DataFrame:
    """Per model and eps: every metric's minimum over `attacks` reaching the model as any of
    `attackers`, with the attack that reached it (`<metric>_attack`, robdml.worst_case's
    `attacker_name`), that attack's k-means std (`<metric>_std`, where measured), the mean
    chance NMI and how many of `attacks` were found white-box (`n_attacks`; fewer means
    missing runs)."""
    rows = long[long["threat"].isin(attackers) & long["attack"].isin(attacks)]
    rows = rows.assign(attacker=attacker_name(rows)) if len(rows) else rows.assign(attacker="")
    # on a tie the white-box attack is named: idxmin takes the first row
    priority = rows["threat"].map({threat: i for i, threat in enumerate(ATTACKERS)})
    rows = rows.iloc[priority.argsort(kind="stable")]
    keys = MODEL + ["eps_255"]
    grouped = rows.groupby(keys)
    whitebox = rows[rows["threat"] == "whitebox"].groupby(keys)["attack"].nunique()
    worst = whitebox.reindex(grouped.size().index, fill_value=0).rename("n_attacks").to_frame()
    worst["nmi_chance"] = grouped["nmi_chance"].mean()
    for metric in METRICS:
        if metric not in rows:
            continue
        picked = rows.loc[grouped[metric].idxmin()].set_index(keys)
        worst[metric] = picked[metric]
        worst[f"{metric}_attack"] = picked["attacker"]
        if f"{metric}_std" in picked:
            worst[f"{metric}_std"] = picked[f"{metric}_std"]
    worst = worst.reset_index()
    worst.insert(len(keys), "threat_model", threat_model)
    return worst


def suite_worst_cases(long: pd.DataFrame, suites: dict[str, list[str]]) -> pd.DataFrame:
    """worst_case for every threat model of the suites, stacked."""
    frames = [worst_case(long, attacks, name) for name, attacks in threat_models(suites).items()]
    return pd.concat(frames, ignore_index=True)


def at_eps(worst: pd.DataFrame, eps_255: float) -> pd.DataFrame:
    return worst[worst["eps_255"] == eps_255]
