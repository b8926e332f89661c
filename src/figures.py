"""Rule figures: long results table -> NMI per defense, and NMI / R@1 against eps."""

import argparse
import json
from pathlib import Path

import pandas as pd

from robdml.figures import metric_vs_eps, nmi_by_defense


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", required=True, help="results/tables/long.csv")
    parser.add_argument("--main-eps", type=float, required=True)
    parser.add_argument("--suites", required=True, help="the `attack_suites` config, as JSON")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args()
    long = pd.read_csv(args.long)
    suites = json.loads(args.suites)
    nmi_by_defense(long, args.main_eps, suites, args.out_dir / "nmi_by_defense")
    metric_vs_eps(long, "nmi", suites, args.out_dir / "nmi_vs_eps")
    metric_vs_eps(long, "recall@1", suites, args.out_dir / "recall1_vs_eps")


if __name__ == "__main__":
    main()
