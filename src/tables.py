"""Rule tables: all metrics JSONs and the jobs' benchmark files -> results/tables/: long.csv,
main, attacks, transfer and cost as .csv/.md/.tex, paired and members as .csv/.md.

The benchmark files (train, attack, attack_members, transfer) are read from --benchmark-root,
not declared as inputs: Snakemake would rerun a training job whose benchmark file is missing
(e.g. models copied in from another run). A rerun job changes metrics too, so the tables
rerun whenever a benchmark file does."""

import argparse
import json
from pathlib import Path

from robdml.grid import Grid
from robdml.io import write_json
from robdml.provenance import run_provenance
from robdml.tables import write_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", required=True, help="file listing the metrics JSONs")
    parser.add_argument("--main-eps", type=float, required=True, help="eps (/255) of main table")
    parser.add_argument("--suites", required=True, help="the `attack_suites` config, as JSON")
    parser.add_argument("--baselines", nargs="*", default=[], help="defenses to pair against")
    parser.add_argument(
        "--grid",
        required=True,
        help="the run's selection in config order, as JSON: {datasets, backbones, defenses,"
        " seeds, external, transfer_sources}",
    )
    parser.add_argument("--kmeans-seeds", type=int, help="k-means seeds per evaluation")
    parser.add_argument(
        "--benchmark-root", required=True, type=Path, help="the jobs' benchmark files (cost)"
    )
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--config-hash", required=True, help="hash of the resolved config")
    parser.add_argument("--provenance", required=True, type=Path, help="output: provenance JSON")
    args = parser.parse_args()
    paths = Path(args.inputs).read_text().split()
    grid = Grid.from_config(json.loads(args.grid))
    provenance = run_provenance(args.config_hash)
    write_tables(
        paths, args.main_eps, args.baselines, json.loads(args.suites), args.out_dir,
        grid=grid, kmeans_seeds=args.kmeans_seeds, benchmark_root=args.benchmark_root,
        provenance=provenance,
    )  # fmt: skip
    write_json(args.provenance, provenance | {"metrics_files": len(paths)})


if __name__ == "__main__":
    main()
