"""Result tables from the per-evaluation JSON files (pandas).

`long`: one row per JSON. `main`: per (dataset, backbone, defense), clean and adversarial
NMI / F1 / R@1 side by side, where "adversarial" is the worst case over white-box attacks at the
main eps (per seed and metric), as mean +- std over seeds, with ARI and the chance NMI next to
them. Transfer (black-box) rows stay in `long` and feed the sanity checks.
"""

import json
from pathlib import Path

import pandas as pd

from robdml.io import atomic_write

IDS = ["dataset", "backbone", "defense", "seed", "threat", "source", "attack", "eps_255"]
GROUP = ["dataset", "backbone", "defense"]
MAIN_METRICS = {"nmi": "NMI", "f1": "F1", "recall@1": "R@1", "ari": "ARI"}


def load_results(paths: list[str | Path]) -> pd.DataFrame:
    """One row per metrics JSON: identifiers, metrics, config hash."""
    rows = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        rows.append({**result["ids"], **result["metrics"], "config_hash": result["config_hash"]})
    frame = pd.DataFrame(rows)
    return frame.sort_values(IDS, kind="stable").reset_index(drop=True)


def worst_case(long: pd.DataFrame, eps_255: float) -> pd.DataFrame:
    """Per (dataset, backbone, defense, seed): the minimum of each metric over white-box attacks
    at eps."""
    attacked = long[(long["threat"] == "whitebox") & (long["eps_255"] == eps_255)]
    metrics = list(MAIN_METRICS) + ["nmi_chance"]
    return attacked.groupby(GROUP + ["seed"], as_index=False)[metrics].min()


def mean_std(values: pd.Series, sign: str = "") -> str:
    """'0.812 ± 0.004' over seeds ('0.812' for a single seed); sign='+' prints '+0.812'."""
    if len(values) == 1:
        return f"{values.iloc[0]:{sign}.3f}"
    return f"{values.mean():{sign}.3f} ± {values.std(ddof=1):.3f}"


def main_table(long: pd.DataFrame, eps_255: float) -> pd.DataFrame:
    """Clean vs worst-case adversarial metrics per defense, mean ± std over seeds."""
    clean = long[long["threat"] == "clean"]
    adversarial = worst_case(long, eps_255)
    columns = {}
    for metric, label in MAIN_METRICS.items():
        columns[f"clean {label}"] = clean.groupby(GROUP)[metric].agg(mean_std)
        columns[f"adv {label}"] = adversarial.groupby(GROUP)[metric].agg(mean_std)
    columns["chance NMI"] = adversarial.groupby(GROUP)["nmi_chance"].mean().map("{:.3f}".format)
    columns["seeds"] = clean.groupby(GROUP)["seed"].nunique()
    return pd.DataFrame(columns).reset_index()


def paired_table(long: pd.DataFrame, eps_255: float, baselines: list[str]) -> pd.DataFrame:
    """Per defense and baseline: the seed-paired difference (defense - baseline) of clean and
    worst-case adversarial NMI and ARI, mean ± std over seeds, and in how many seeds the defense
    is ahead. Pairing by seed removes the variance the two runs share (same data order, same
    evaluation seed)."""
    clean = long[long["threat"] == "clean"].set_index(GROUP + ["seed"])
    adversarial = worst_case(long, eps_255).set_index(GROUP + ["seed"])
    per_seed = pd.DataFrame(
        {
            "clean NMI": clean["nmi"],
            "adv NMI": adversarial["nmi"],
            "adv ARI": adversarial["ari"],
        }
    ).reset_index()
    rows = []
    for baseline in baselines:
        base = per_seed[per_seed["defense"] == baseline].drop(columns="defense")
        merged = per_seed.merge(base, on=["dataset", "backbone", "seed"], suffixes=("", " base"))
        merged = merged[merged["defense"] != baseline]
        for keys, group in merged.groupby(GROUP):
            row = dict(zip(GROUP, keys, strict=True)) | {"baseline": baseline}
            for metric in ("clean NMI", "adv NMI", "adv ARI"):
                difference = group[metric] - group[f"{metric} base"]
                row[f"Δ {metric}"] = mean_std(difference, sign="+")
                if metric != "clean NMI":
                    row[f"seeds ahead ({metric})"] = f"{int((difference > 0).sum())}/{len(group)}"
            rows.append(row)
    return pd.DataFrame(rows)


def members_table(long: pd.DataFrame, eps_255: float) -> pd.DataFrame:
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
    adversarial = worst_case(long, eps_255).merge(ensembles, on=GROUP)
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
    paths: list[str | Path], eps_255: float, baselines: list[str], out: dict[str, Path]
) -> None:
    """Write long.csv, main.{csv,md,tex}, paired.{csv,md} and members.{csv,md} (paths in `out`)."""
    long = load_results(paths)
    atomic_write(out["long"], lambda tmp: long.to_csv(tmp, index=False))
    write_csv_and_markdown(
        members_table(long, eps_255),
        out["members_csv"],
        out["members_md"],
        "Ensembles: the ensemble vs its members alone (mean over members), clean and on the "
        f"ensemble's adversarial sets (worst case, eps {eps_255:g}/255), and the strongest "
        "single-member attack on the ensemble; mean ± std over seeds.",
    )
    write_csv_and_markdown(
        paired_table(long, eps_255, baselines),
        out["paired_csv"],
        out["paired_md"],
        "Seed-paired differences to each baseline (defense - baseline; adversarial = worst case "
        f"over white-box attacks at eps {eps_255:g}/255), mean ± std over seeds.",
    )
    main = main_table(long, eps_255)
    caption = (
        f"Clean vs adversarial (worst case over white-box attacks, eps {eps_255:g}/255) "
        "clustering and retrieval metrics; mean ± std over seeds."
    )
    write_csv_and_markdown(main, out["csv"], out["md"], caption)
    atomic_write(
        out["tex"],
        lambda tmp: tmp.write_text(
            main.to_latex(index=False, caption=caption, label="tab:main").replace("±", r"$\pm$")
        ),
    )
