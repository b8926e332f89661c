"""Result tables from the jobs' metrics records (pandas), over the run's grid (robdml.grid); the
cost table is robdml.job_costs'. `main`: per (dataset, backbone, defense), clean metrics next
to the worst case over each threat model's attack suite at the main eps (robdml.worst_case), as
mean ± std over training seeds (over k-means seeds when there is one training seed), with the
chance NMI. `attacks`: every white-box attack's NMI at the main eps and which one is the worst
case. `transfer`: each target defense's NMI under examples crafted on each source defense
(black-box). `paired` and `members`: seed-paired differences to baselines, and ensembles vs
their members.

main, attacks, transfer and cost are written as CSV (for analysis), Markdown and LaTeX (for
reading): rows in the run's order of datasets, backbones and defenses, the best mean of each
numeric column (per dataset and backbone) in bold, and under the table every run of the grid
that is missing from it (a model without a clean record, a suite attack without a record):
listed, never dropped silently.
"""

import math
from pathlib import Path

import pandas as pd

from robdml.adversarial import transfer_source_name
from robdml.grid import (
    GROUP,
    Grid,
    load_results,
    missing_runs,
    model_name,
    order_rows,
    table_index,
)
from robdml.io import atomic_write
from robdml.job_costs import benchmark_files, cost_frame, cost_table
from robdml.provenance import provenance_text
from robdml.table_format import Table
from robdml.threat_model import ThreatModel
from robdml.worst_case import (
    ATTACKERS,
    MODEL,
    WHITEBOX,
    at_eps,
    threat_models,
    worst_case,
)

MAIN_METRICS = {"nmi": "NMI", "ari": "ARI", "f1": "F1", "recall@1": "R@1"}


# -- statistics -----------------------------------------------------------------------------------


def mean_std(values: pd.Series, sign: str = "") -> str:
    """'0.812 ± 0.004' over seeds ('0.812' for a single seed); sign='+' prints '+0.812'."""
    if len(values) == 1:
        return f"{values.iloc[0]:{sign}.3f}"
    return f"{values.mean():{sign}.3f} ± {values.std(ddof=1):.3f}"


def seed_stats(frame: pd.DataFrame, metric: str, keys: list[str] = GROUP) -> pd.DataFrame:
    """Per group of `keys`: `mean` and `std` of `metric` over its rows (training seeds),
    `n` rows; a group of one row takes its k-means std (`<metric>_std`) where measured."""
    grouped = frame.groupby(keys)[metric]
    stats = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.size()})
    std = f"{metric}_std"
    if std in frame:
        single = stats["n"] == 1
        stats.loc[single, "std"] = frame.groupby(keys)[std].first()[single]
    return stats


def empty_frame(index: pd.MultiIndex) -> pd.DataFrame:
    return pd.DataFrame(index=index)


def stats_table(index: pd.MultiIndex, columns: dict[str, pd.DataFrame]) -> tuple:
    """(mean, std) frames over `index` from {column: seed_stats(...)}."""
    mean, std = empty_frame(index), empty_frame(index)
    for column, stats in columns.items():
        mean[column] = stats["mean"].reindex(index).astype(float)
        std[column] = stats["std"].reindex(index).astype(float)
    return mean, std


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def run_text(grid: Grid, kmeans_seeds: int | None, long: pd.DataFrame) -> str:
    """How many training and k-means seeds each value averages, and the chance NMI."""
    seeds = len(grid.seeds)
    text = f"{seeds} training seed{plural(seeds)}"
    if kmeans_seeds:
        text += f", each evaluated with {kmeans_seeds} k-means seed{plural(kmeans_seeds)}"
    text += (
        "; mean ± std over training seeds (one seed: ± std over the k-means seeds)"
        if seeds > 1
        else "; ± std over the k-means seeds"
    )
    clean = long[long["threat"] == "clean"] if "threat" in long else long
    if "nmi_chance" in clean and clean["nmi_chance"].notna().any():
        chance = clean.groupby("dataset")["nmi_chance"].mean()
        chance = chance.reindex([d for d in grid.datasets if d in chance] + [
            d for d in chance.index if d not in grid.datasets
        ])  # fmt: skip
        text += ". Chance NMI of the clean clusterings (mean over models): " + ", ".join(
            f"{dataset} {value:.3f}" for dataset, value in chance.items()
        )
    return text + "."


# -- the tables ---------------------------------------------------------------------------------


def main_table(
    long: pd.DataFrame, eps_255: float, suites: dict, grid: Grid | None = None,
    kmeans_seeds: int | None = None,
) -> Table:  # fmt: skip
    """Clean vs the worst case of each threat model, per defense."""
    grid = grid or Grid.from_results(long)
    index = table_index(long, grid)
    clean = long[long["threat"] == "clean"]
    worst = {
        name: at_eps(worst_case(long, attacks), eps_255)
        for name, attacks in threat_models(suites).items()
    }
    columns, groups = {}, []
    for metric, label in MAIN_METRICS.items():
        members = [f"clean {label}"] + [f"{name} {label}" for name in worst]
        columns[members[0]] = seed_stats(clean, metric)
        for name, frame in worst.items():
            columns[f"{name} {label}"] = seed_stats(frame, metric)
        groups.append((label, members))
    mean, std = stats_table(index, columns)
    best = dict.fromkeys(mean.columns, "max")
    mean["chance NMI"] = (
        worst[ThreatModel.LABEL_FREE].groupby(GROUP)["nmi_chance"].mean().reindex(index)
    )
    std["chance NMI"] = math.nan
    seeds = clean.groupby(GROUP)["seed"].nunique().reindex(index).fillna(0).astype(int)
    text = pd.DataFrame({"seeds": seeds}, index=index)
    suite_text = "; ".join(
        f"{name}: {', '.join(attacks)}" for name, attacks in threat_models(suites).items()
    )
    caption = (
        f"Clean vs adversarial metrics at eps {eps_255:g}/255: the worst case per metric and "
        f"seed over each threat model's attack suite ({suite_text}), crafted on the model, on "
        "one of an ensemble's members or on a transfer source (attacks.md names the one behind "
        "each NMI); label-aware attackers also know the true test labels. "
        f"{run_text(grid, kmeans_seeds, long)} Bold: the highest mean per column and "
        "dataset/backbone."
    )
    notes = missing_runs(long, grid, eps_255, suites)
    return Table("main", caption, mean, std, text, best, notes, groups=groups)


def attacks_table(
    long: pd.DataFrame, eps_255: float, suites: dict, grid: Grid | None = None,
    kmeans_seeds: int | None = None,
) -> Table:  # fmt: skip
    """Per defense: NMI under every white-box attack at eps (mean ± std over seeds), and per
    threat model the attack that is most often the worst case (NMI) over the seeds."""
    grid = grid or Grid.from_results(long)
    index = table_index(long, grid)
    attacked = long[(long["threat"] == "whitebox") & (long["eps_255"] == eps_255)]
    order = list(dict.fromkeys(sum(threat_models(suites).values(), [])))
    present = sorted(attacked["attack"].unique())
    attacks = [a for a in order if a in present] + [a for a in present if a not in order]
    columns = {a: seed_stats(attacked[attacked["attack"] == a], "nmi") for a in attacks}
    mean, std = stats_table(index, columns)
    text = pd.DataFrame(index=index)
    for name, suite in threat_models(suites).items():
        worst = at_eps(worst_case(long, suite), eps_255)
        text[f"{name} worst"] = (
            worst.groupby(GROUP)["nmi_attack"]
            .agg(lambda names: names.mode().iloc[0])
            .reindex(index)
        )
    suite_text = "; ".join(f"{name}: {', '.join(a)}" for name, a in threat_models(suites).items())
    caption = (
        f"NMI under every white-box attack at eps {eps_255:g}/255 and the attack that is most "
        f"often the worst case (NMI) per threat model ({suite_text}; 'on member1': crafted on "
        "that member of the ensemble, 'on vanilla/seed1': on that transfer source). "
        f"{run_text(grid, kmeans_seeds, long)} Bold: the highest mean per column and "
        "dataset/backbone."
    )
    notes = missing_runs(long, grid, eps_255, suites)
    return Table("attacks", caption, mean, std, text, dict.fromkeys(attacks, "max"), notes)


def transfer_table(
    long: pd.DataFrame, eps_255: float, suites: dict, grid: Grid | None = None,
    kmeans_seeds: int | None = None,
) -> Table:  # fmt: skip
    """Transfer matrix: per target (dataset, backbone, defense) and source defense, the NMI of
    the target under the source's examples at eps: per target seed the minimum over the
    transferred attacks, then mean ± std over target seeds; next to it the target's white-box
    label-free worst case (transfer should not be stronger: sanity check (c))."""
    grid = grid or Grid.from_results(long)
    index = table_index(long, grid)
    rows = long[(long["threat"] == "transfer") & (long["eps_255"] == eps_255)]
    keys = MODEL + ["source_defense"]
    if len(rows):
        rows = rows.loc[rows.groupby(keys)["nmi"].idxmin()]
    sources = rows["source_defense"].unique().tolist()
    rank = {name: i for i, name in enumerate(grid.defenses)}
    sources.sort(key=lambda name: (rank.get(name, len(rank)), name))
    columns = {
        f"from {source}": seed_stats(rows[rows["source_defense"] == source], "nmi")
        for source in sources
    }
    white = at_eps(
        worst_case(long, threat_models(suites)[ThreatModel.LABEL_FREE], attackers=WHITEBOX), eps_255
    )
    columns["white-box label-free"] = seed_stats(white, "nmi")
    mean, std = stats_table(index, columns)
    attacks = sorted(rows["attack"].unique())
    caption = (
        f"Transfer (black-box) NMI at eps {eps_255:g}/255: rows are the attacked (target) "
        "models, columns the defense of the source model the examples were crafted on (its "
        "seed is the target's next seed); per target seed the worst case over the transferred "
        f"attacks ({', '.join(attacks) or 'none'}). The white-box label-free worst case for "
        f"comparison: transfer should not be stronger. {run_text(grid, kmeans_seeds, long)} "
        "Bold: the highest mean per column and dataset/backbone."
    )
    found = set(map(tuple, rows[MODEL + ["source"]].astype(object).to_numpy().tolist()))
    notes = []
    for model, expected in grid.transfer_sources.items():
        for source in map(transfer_source_name, expected):
            if (*model, source) not in found:
                notes.append(f"{model_name(model)}: no transfer record from {source}")
    if not sources and not grid.transfer_sources:
        caption += " No transfer attacks in this run (config `transfer.attacks` is empty)."
    return Table(
        "transfer", caption, mean, std, pd.DataFrame(index=index),
        dict.fromkeys(mean.columns, "max"), notes,
    )  # fmt: skip


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
    """Per ensemble (a model with member records): per threat model its worst-case NMI over
    the attacks crafted on the ensemble itself (white-box), over those crafted on one member
    and evaluated on the ensemble (minimum over members), and over both with transfer (the
    worst case the other tables report); with `ensemble_members.evaluate`, the ensemble clean
    next to its members alone (mean over members; clean and on the ensemble's adversarial
    sets, label-free worst case). Mean ± std over seeds; empty without ensembles."""
    model = GROUP + ["seed"]
    ensembles = long[long["threat"].isin(["member", "member_attack"])][GROUP].drop_duplicates()
    if ensembles.empty:
        return pd.DataFrame(columns=GROUP)
    per_seed = {}
    member = long[long["threat"] == "member"]
    if not member.empty:
        clean = long[long["threat"] == "clean"].set_index(model)["nmi"]
        adversarial = member[(member["attack"] != "clean") & (member["eps_255"] == eps_255)]
        adversarial = adversarial[adversarial["attack"].isin(suites["label_free"])]
        per_seed["ensemble clean NMI"] = clean
        per_seed["members clean NMI"] = (
            member[member["attack"] == "clean"].groupby(model)["nmi"].mean()
        )
        per_seed["members adv NMI"] = (
            adversarial.groupby(model + ["source"])["nmi"].min().groupby(model).mean()
        )
    for name, attacks in threat_models(suites).items():
        for label, attackers in (
            ("white-box", WHITEBOX), ("member attack", ("member_attack",)), ("worst", ATTACKERS)
        ):  # fmt: skip
            worst = at_eps(worst_case(long, attacks, attackers=attackers), eps_255)
            per_seed[f"{name} {label} NMI"] = worst.set_index(model)["nmi"]
    frame = pd.DataFrame(per_seed).reset_index().merge(ensembles, on=GROUP)
    columns = [column for column in per_seed if frame[column].notna().any()]
    return (
        frame.groupby(GROUP)
        .agg({column: lambda v: mean_std(v.dropna()) for column in columns} | {"seed": "nunique"})
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
    out_dir: str | Path,
    grid: Grid | None = None,
    kmeans_seeds: int | None = None,
    benchmark_root: str | Path = "results/benchmarks",
    provenance: dict | None = None,
) -> None:
    """Write into `out_dir`: long.csv; main, attacks, transfer and cost as .csv, .md and .tex
    (cost.csv: seconds and MB, as numbers); paired and members as .csv and .md. `grid`: the
    run's selection (order, expected models; default: the models in the results);
    `benchmark_root`: where the jobs' benchmark files are (the cost table); `provenance`
    (robdml.provenance.run_provenance): named at the end of every caption."""
    out_dir, root = Path(out_dir), Path(benchmark_root)
    source = f" {provenance_text(provenance)}" if provenance else ""
    long = load_results(paths)
    grid = grid or Grid.from_results(long)
    atomic_write(out_dir / "long.csv", lambda tmp: long.to_csv(tmp, index=False))
    for build in (main_table, attacks_table, transfer_table):
        table = build(long, eps_255, suites, grid, kmeans_seeds)
        table.caption += source
        table.write(out_dir)
    cost = cost_frame(benchmark_files(root), grid)
    atomic_write(out_dir / "cost.csv", lambda tmp: cost.to_csv(tmp, index=False))
    table = cost_table(cost, grid)
    table.caption += source
    table.write(out_dir, csv=False)
    write_csv_and_markdown(
        order_rows(members_table(long, eps_255, suites), grid),
        out_dir / "members.csv",
        out_dir / "members.md",
        f"Ensembles at eps {eps_255:g}/255, per threat model: the worst-case NMI over the "
        "attacks crafted on the ensemble (white-box), over those crafted on one member and "
        "evaluated on the ensemble (member attack), and over both and transfer (worst: the "
        "main table's); where members are evaluated alone, the ensemble vs its members (mean "
        "over members) clean and on the ensemble's adversarial sets (label-free worst case). "
        "Mean ± std over seeds." + source,
    )
    write_csv_and_markdown(
        order_rows(paired_table(long, eps_255, baselines, suites), grid),
        out_dir / "paired.csv",
        out_dir / "paired.md",
        "Seed-paired differences to each baseline (defense - baseline) of clean NMI and of each "
        f"threat model's worst case at eps {eps_255:g}/255, mean ± std over seeds." + source,
    )
