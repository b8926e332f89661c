"""What the jobs cost, as Snakemake's benchmark files measured it: wall seconds and peak
memory per job, summed per defense (`cost.csv`, the cost table and figure)."""

import itertools
import math
from pathlib import Path

import pandas as pd

from robdml.benchmark_paths import COST_BENCHMARKS, benchmark_fields
from robdml.grid import GROUP, Grid, table_index
from robdml.table_format import Table
from robdml.worst_case import MODEL

JOB_KINDS = ["train", "attack", "members", "transfer"]  # benchmark files the cost table reads


def benchmark_row(path: Path) -> dict:
    """Kind, model and wall seconds (mean over Snakemake's `repeat`s) of one benchmark file,
    its kind and model read from the end of its path by the rules' own patterns
    (robdml.benchmark_paths)."""
    fields = benchmark_fields(Path(path).as_posix())
    if fields is None:
        raise ValueError(f"{path}: not a train, attack, members or transfer benchmark file")
    frame = pd.read_csv(path, sep="\t")
    rss = pd.to_numeric(frame["max_rss"], errors="coerce") if "max_rss" in frame else None
    return {
        **{key: fields[key] for key in ("dataset", "backbone", "defense", "kind")},
        "seed": int(fields["seed"]),
        "seconds": float(pd.to_numeric(frame["s"], errors="coerce").mean()),
        "max_rss": float(rss.max()) if rss is not None and rss.notna().any() else math.nan,
    }


def benchmark_files(root: Path) -> list[Path]:
    """The cost table's benchmark files under `root` (a run's listing, for callers without the
    list of the jobs' files)."""
    folders = sorted({pattern.split("/")[0] for pattern in COST_BENCHMARKS.values()})
    return sorted(path for folder in folders for path in (root / folder).rglob("*.tsv"))


def cost_frame(paths: list[str | Path], grid: Grid) -> pd.DataFrame:
    """Per (dataset, backbone, defense): summed wall seconds per job kind and in total, jobs,
    largest max RSS (MB), in the grid's order; numbers, as cost.csv holds them. Jobs of models
    outside the grid (another config's run in the same results/) are left out."""
    rows = pd.DataFrame(
        [benchmark_row(Path(path)) for path in paths],
        columns=GROUP + ["seed", "kind", "seconds", "max_rss"],
    )
    expected = set(grid.models())
    in_grid = [tuple(model) in expected for model in rows[MODEL].itertuples(index=False)]
    rows = rows[pd.Series(in_grid, index=rows.index, dtype=bool)]
    index = table_index(rows, grid)
    frame = rows.groupby(GROUP + ["kind"])["seconds"].sum().unstack("kind")
    frame = frame.reindex(index=index, columns=JOB_KINDS).astype(float)
    frame.columns = [f"{kind} (s)" for kind in JOB_KINDS]
    frame["total (s)"] = frame.sum(axis=1, min_count=1)
    frame["jobs"] = rows.groupby(GROUP).size().reindex(index).fillna(0).astype(int)
    frame["peak RSS (MB)"] = rows.groupby(GROUP)["max_rss"].max().reindex(index)
    return frame.reset_index()


def cost_table(cost: pd.DataFrame, grid: Grid) -> Table:
    """cost_frame for reading: hours (minutes, seconds for a short run), lowest in bold, and
    every expected model without a train benchmark in the notes."""
    seconds = [f"{kind} (s)" for kind in JOB_KINDS + ["total"]]
    largest = cost[seconds].max().max()
    unit, scale = ("h", 3600) if largest >= 7200 else ("min", 60) if largest >= 120 else ("s", 1)
    index = pd.MultiIndex.from_frame(cost[GROUP])
    mean = pd.DataFrame(index=index)
    for column in seconds:
        mean[column.replace("(s)", f"({unit})")] = cost[column].to_numpy() / scale
    mean["peak RSS (GB)"] = cost["peak RSS (MB)"].to_numpy() / 1024
    std = pd.DataFrame(math.nan, index=index, columns=mean.columns)
    text = pd.DataFrame({"jobs": cost["jobs"].to_numpy()}, index=index)
    unit_name = {"h": "hours", "min": "minutes", "s": "seconds"}[unit]
    caption = (
        "Compute per defense: wall time of its jobs summed over seeds, from Snakemake's "
        "benchmark files (train; attack: the attack-group jobs, which craft and evaluate; "
        "members: an ensemble's members job; transfer: a source model's transfer job, charged "
        f"to the source defense) in {unit_name}, and the largest max RSS of any of its jobs. "
        "Bold: the lowest per column and dataset/backbone."
    )
    trained = set()
    if "train (s)" in cost:
        trained = set(map(tuple, cost.loc[cost["train (s)"].notna(), GROUP].to_numpy().tolist()))
    notes = [
        f"{dataset}/{backbone}/{defense}: no train benchmark"
        for dataset, backbone, defense in itertools.product(
            grid.datasets, grid.backbones, grid.defenses
        )
        if (dataset, backbone, defense) not in trained
    ]
    best = dict.fromkeys(mean.columns, "min")
    return Table("cost", caption, mean, std, text, best, notes, decimals=2)
