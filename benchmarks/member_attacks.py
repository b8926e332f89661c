"""Is each attack crafted on ensemble members worth its passes? Per member attack, how much
the ensembles' worst cases (every eps, threat model and metric) would rise without its rows.

Reads finished runs' `results/tables/long.csv` (the records every table is built from) and
takes the worst cases as the tables do (robdml.worst_case), with the suites of `--config`.
A member attack whose largest rise is 0 is never the only worst case: dropping it from
`ensemble_members.attacks` changes no reported number of those runs.

    python benchmarks/member_attacks.py --config config/demo_full.yaml \
        --long results/tables/long.csv other_run/results/tables/long.csv
"""

import argparse

import pandas as pd

from robdml.config import load_config
from robdml.worst_case import MODEL, suite_worst_cases

METRICS = ["nmi", "ari", "f1", "recall@1"]
KEYS = MODEL + ["eps_255", "threat_model"]


def worst_cases(long: pd.DataFrame, suites: dict) -> pd.DataFrame:
    return suite_worst_cases(long, suites).set_index(KEYS)[METRICS]


def rises_without(ensembles: pd.DataFrame, attack: str, suites: dict, with_all) -> pd.DataFrame:
    """Per ensemble, eps and threat model: each metric's worst case without the member rows of
    `attack` minus `with_all` (0 unless that attack alone reached the worst case)."""
    dropped = (ensembles["threat"] == "member_attack") & (ensembles["attack"] == attack)
    return worst_cases(ensembles[~dropped], suites) - with_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", nargs="+", default=["config/demo_full.yaml"])
    parser.add_argument("--long", nargs="+", required=True, help="runs' results/tables/long.csv")
    args = parser.parse_args()
    suites = load_config(*args.config)["attack_suites"]
    long = pd.concat(
        [pd.read_csv(path).assign(run=index) for index, path in enumerate(args.long)],
        ignore_index=True,
    )
    long["seed"] = long["run"].astype(str) + "/" + long["seed"].astype(str)  # runs apart
    members = long[long["threat"] == "member_attack"]
    ensembles = long.merge(members[MODEL].drop_duplicates())  # every record of those models
    with_all = worst_cases(ensembles, suites)
    print(
        f"{members[MODEL].drop_duplicates().shape[0]} ensembles (run/seed) in {len(args.long)} "
        f"runs, eps {sorted(members['eps_255'].unique().tolist())}"
    )
    rows, results = [], []
    for attack in sorted(members["attack"].unique()):
        rises = rises_without(ensembles, attack, suites, with_all).stack()
        rows.append(
            {
                "member attack": attack,
                "worst cases": len(rises),
                "it alone reached": int((rises > 0).sum()),
                "largest rise without it": rises.max(),
                "where": " ".join(map(str, rises.idxmax())) if rises.max() > 0 else "",
            }
        )
        results.append(f"{attack}_largest_rise={rises.max():.4f}")
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.4f}".format))
    print("RESULT " + " ".join(results))


if __name__ == "__main__":
    main()
