"""Result tables from the jobs' metrics JSONs (pandas).

`long`: one row per metrics record. `main`: per (dataset, backbone, defense), clean metrics
next to the worst case over each threat model's attack suite at the main eps (robdml.worst_case), as
mean ± std over seeds (over k-means seeds when there is one training seed), with the chance
NMI. `attacks`: every attack's NMI at the main eps and which one is the worst case. Transfer
(black-box) rows stay in `long` and feed the sanity checks.
"""

import json
from pathlib import Path

import pandas as pd

from robdml.io import atomic_write
from robdml.worst_case import LABEL_FREE, MODEL, threat_models, worst_case

IDS = ["dataset", "backbone", "defense", "seed", "threat", "source", "attack", "eps_255"]
GROUP = ["dataset", "backbone", "defense"]
MAIN_METRICS = {"nmi": "NMI", "ari": "ARI", "f1": "F1", "recall@1": "R@1"}


def load_results(paths: list[str | Path]) -> pd.DataFrame:
    """One row per metrics record of the jobs' JSONs (robdml.evaluation): identifiers,
    metrics, config hash."""
    rows = []
    for path in paths:
        for result in json.loads(Path(path).read_text())["records"]:
            rows.append(
                {**result["ids"], **result["metrics"], "config_hash": result["config_hash"]}
            )
    frame = pd.DataFrame(rows)
    return frame.sort_values(IDS, kind="stable").reset_index(drop=True)


def at_eps(worst: pd.DataFrame, eps_255: float) -> pd.DataFrame:
    return worst[worst["eps_255"] == eps_255]


def mean_std(values: pd.Series, sign: str = "") -> str:
    """'0.812 ± 0.004' over seeds ('0.812' for a single seed); sign='+' prints '+0.812'."""
    if len(values) == 1:
        return f"{values.iloc[0]:{sign}.3f}"
    return f"{values.mean():{sign}.3f} ± {values.std(ddof=1):.3f}"


def cell(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Per defense: mean ± std over training seeds; with one seed, ± its k-means std."""
    std = f"{metric}_std"

    def one(group: pd.DataFrame) -> str:
        if len(group) == 1 and std in group and pd.notna(group[std].iloc[0]):
            return f"{group[metric].iloc[0]:.3f} ± {group[std].iloc[0]:.3f}"
        return mean_std(group[metric])

    return frame.groupby(GROUP).apply(one, include_groups=False)


def main_table(long: pd.DataFrame, eps_255: float, suites: dict) -> pd.DataFrame:
    """Clean vs the worst case of each threat model, per defense."""
    clean = long[long["threat"] == "clean"]
    columns = {}
    worst = {
        name: at_eps(worst_case(long, attacks), eps_255)
        for name, attacks in threat_models(suites).items()
    }
    for metric, label in MAIN_METRICS.items():
        columns[f"clean {label}"] = cell(clean, metric)
        for name, frame in worst.items():
            columns[f"{name} {label}"] = cell(frame, metric)
    columns["chance NMI"] = (
        worst[LABEL_FREE].groupby(GROUP)["nmi_chance"].mean().map("{:.3f}".format)
    )
    columns["seeds"] = clean.groupby(GROUP)["seed"].nunique()
    return pd.DataFrame(columns).reset_index()


def attacks_table(long: pd.DataFrame, eps_255: float, suites: dict) -> pd.DataFrame:
    """Per defense: NMI under every white-box attack at eps (mean over seeds), and per threat
    model the attack that is most often the worst case (NMI) over the seeds."""
    attacked = long[(long["threat"] == "whitebox") & (long["eps_255"] == eps_255)]
    table = attacked.pivot_table(index=GROUP, columns="attack", values="nmi", aggfunc="mean")
    order = list(dict.fromkeys(sum(threat_models(suites).values(), [])))
    table = table[[a for a in order if a in table] + [a for a in table if a not in order]]
    table = table.map("{:.3f}".format)
    for name, attacks in threat_models(suites).items():
        worst = at_eps(worst_case(long, attacks), eps_255)
        table[f"{name} worst"] = worst.groupby(GROUP)["nmi_attack"].agg(
            lambda names: names.mode().iloc[0]
        )
    return table.reset_index()


def label_free_worst(long: pd.DataFrame, eps_255: float, suites: dict) -> pd.DataFrame:
    return at_eps(worst_case(long, suites["label_free"]), eps_255)


def paired_table(
    long: pd.DataFrame, eps_255: float, baselines: list[str], suites: dict
) -> pd.DataFrame:
    """Per defense and baseline: the seed-paired difference (defense - baseline) of clean NMI
    and of each threat model's worst-case NMI and ARI, mean ± std over seeds, and in how many
    seeds the defense is ahead. Pairing by seed removes the variance the two runs share (same
    data order, same evaluation seed)."""
    clean = long[long["threat"] == "clean"].set_index(GROUP + ["seed"])
    per_seed = {"clean NMI": clean["nmi"]}
    for name, attacks in threat_models(suites).items():
        worst = at_eps(worst_case(long, attacks), eps_255).set_index(MODEL)
        per_seed[f"{name} NMI"], per_seed[f"{name} ARI"] = worst["nmi"], worst["ari"]
    per_seed = pd.DataFrame(per_seed).reset_index()
    rows = []
    for baseline in baselines:
        base = per_seed[per_seed["defense"] == baseline].drop(columns="defense")
        merged = per_seed.merge(base, on=["dataset", "backbone", "seed"], suffixes=("", " base"))
        merged = merged[merged["defense"] != baseline]
        for keys, group in merged.groupby(GROUP):
            row = dict(zip(GROUP, keys, strict=True)) | {"baseline": baseline}
            for metric in [column for column in per_seed if column not in MODEL]:
                difference = group[metric] - group[f"{metric} base"]
                row[f"Δ {metric}"] = mean_std(difference, sign="+")
                if metric != "clean NMI":
                    row[f"seeds ahead ({metric})"] = f"{int((difference > 0).sum())}/{len(group)}"
            rows.append(row)
    return pd.DataFrame(rows)


def members_table(long: pd.DataFrame, eps_255: float, suites: dict) -> pd.DataFrame:
    """Per ensemble: its clean and worst-case white-box NMI next to its members alone (mean over
    members; on the clean test set and on the ensemble's adversarial sets) and the strongest
    single-member attack (examples crafted on one member, evaluated on the ensemble; minimum
    over members and attacks). Mean ± std over seeds. Empty without ensembles."""
    model = GROUP + ["seed"]
    member = long[long["threat"] == "member"]
    if member.empty:
        return pd.DataFrame(columns=GROUP)
    ensembles = member[GROUP].drop_duplicates()
    clean = long[long["threat"] == "clean"].merge(ensembles, on=GROUP)
    adversarial = label_free_worst(long, eps_255, suites).merge(ensembles, on=GROUP)
    member_clean = member[member["attack"] == "clean"].groupby(model)["nmi"].mean()
    member_adversarial = (
        member[(member["attack"] != "clean") & (member["eps_255"] == eps_255)]
        .groupby(model + ["source"])["nmi"]
        .min()
        .groupby(model)
        .mean()
    )
    from_member = long[(long["threat"] == "member_attack") & (long["eps_255"] == eps_255)]
    per_seed = {
        "ensemble clean NMI": clean.set_index(model)["nmi"],
        "members clean NMI": member_clean,
        "ensemble adv NMI": adversarial.set_index(model)["nmi"],
        "members adv NMI": member_adversarial,
    }
    if not from_member.empty:
        per_seed["single-member attack NMI"] = from_member.groupby(model)["nmi"].min()
    frame = pd.DataFrame(per_seed).reset_index()
    return (
        frame.groupby(GROUP)
        .agg({column: mean_std for column in per_seed} | {"seed": "nunique"})
        .reset_index()
        .rename(columns={"seed": "seeds"})
    )


def write_csv_and_markdown(table: pd.DataFrame, csv: Path, markdown: Path, caption: str) -> None:
    """One table as CSV (for analysis) and as Markdown under its caption (for reading)."""
    atomic_write(csv, lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(
        markdown, lambda tmp: tmp.write_text(f"{caption}\n\n{table.to_markdown(index=False)}\n")
    )


def write_tables(
    paths: list[str | Path],
    eps_255: float,
    baselines: list[str],
    suites: dict,
    out: dict[str, Path],
) -> None:
    """Write long.csv and the main, attacks, paired and members tables (paths in `out`)."""
    long = load_results(paths)
    atomic_write(out["long"], lambda tmp: long.to_csv(tmp, index=False))
    suite_text = "; ".join(
        f"{name}: {', '.join(attacks)}" for name, attacks in threat_models(suites).items()
    )
    write_csv_and_markdown(
        members_table(long, eps_255, suites),
        out["members_csv"],
        out["members_md"],
        "Ensembles: the ensemble vs its members alone (mean over members), clean and on the "
        f"ensemble's adversarial sets (label-free worst case, eps {eps_255:g}/255), and the "
        "strongest single-member attack on the ensemble; mean ± std over seeds.",
    )
    write_csv_and_markdown(
        paired_table(long, eps_255, baselines, suites),
        out["paired_csv"],
        out["paired_md"],
        "Seed-paired differences to each baseline (defense - baseline) of clean NMI and of each "
        f"threat model's worst case at eps {eps_255:g}/255, mean ± std over seeds.",
    )
    write_csv_and_markdown(
        attacks_table(long, eps_255, suites),
        out["attacks_csv"],
        out["attacks_md"],
        f"NMI under every white-box attack at eps {eps_255:g}/255 (mean over seeds) and the "
        f"attack that is the worst case per threat model ({suite_text}).",
    )
    main = main_table(long, eps_255, suites)
    caption = (
        f"Clean vs adversarial metrics at eps {eps_255:g}/255: the worst case per metric over "
        f"each threat model's attack suite ({suite_text}); label-aware attackers also know the "
        "true test labels. Mean ± std over training seeds (one seed: ± std over the k-means "
        "seeds)."
    )
    write_csv_and_markdown(main, out["csv"], out["md"], caption)
    atomic_write(
        out["tex"],
        lambda tmp: tmp.write_text(
            main.to_latex(index=False, caption=caption, label="tab:main").replace("±", r"$\pm$")
        ),
    )
