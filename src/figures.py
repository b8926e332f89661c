"""Rule figures: the long results table and the cost table -> results/figures/: NMI per defense
(clean and worst cases), NMI / ARI / Recall@1 against eps, the clean vs robust trade-off and
the compute per defense, each as PNG and PDF; defenses styled in the run's order."""

import argparse
import json
from pathlib import Path

import pandas as pd

from robdml.figures import cost_bars, metric_vs_eps, nmi_by_defense, tradeoff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", required=True, help="results/tables/long.csv")
    parser.add_argument("--cost", required=True, help="results/tables/cost.csv")
    parser.add_argument("--main-eps", type=float, required=True)
    parser.add_argument("--suites", required=True, help="the `attack_suites` config, as JSON")
    parser.add_argument("--defenses", nargs="*", default=[], help="defenses, in the run's order")
    parser.add_argument("--out-dir", required=True, type=Path)
    args = parser.parse_args()
    long = pd.read_csv(args.long)
    cost = pd.read_csv(args.cost)
    suites, eps, order, out = json.loads(args.suites), args.main_eps, args.defenses, args.out_dir
    nmi_by_defense(long, eps, suites, out / "nmi_by_defense", order)
    for metric, name in (("nmi", "nmi"), ("ari", "ari"), ("recall@1", "recall1")):
        metric_vs_eps(long, metric, suites, out / f"{name}_vs_eps", order)
    tradeoff(long, eps, suites, out / "tradeoff", order)
    cost_bars(cost, out / "cost", order)


if __name__ == "__main__":
    main()
