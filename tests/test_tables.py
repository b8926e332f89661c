"""Tables: each threat model's column is the worst case over its suite per seed and metric;
mean ± std over seeds. The figures' and sanity checks' worst cases are the same numbers."""

import json

import pandas as pd
import pytest

from robdml.figures import vs_eps_curves
from robdml.sanity import sanity_table
from robdml.tables import main_table, paired_table, write_tables

SUITES = {"label_free": ["centroid", "random_target"], "label_aware": ["oracle"]}


def write_result(directory, seed, attack, eps, nmi, defense="vanilla"):
    metrics = {"nmi": nmi, "f1": nmi / 2, "recall@1": nmi, "ari": nmi - 0.5, "nmi_chance": 0.5}
    threat = "clean" if attack == "clean" else "whitebox"
    ids = {"dataset": "d", "backbone": "b", "defense": defense, "seed": seed,
           "attack": attack, "eps_255": eps, "threat": threat, "source": ""}  # fmt: skip
    path = directory / f"{defense}_{seed}_{attack}_{eps}.json"
    path.write_text(json.dumps({"records": [{"ids": ids, "metrics": metrics, "config_hash": "x"}]}))
    return path


def test_main_table_takes_the_worst_attack_per_seed_then_mean_and_std(tmp_path):
    paths = [
        write_result(tmp_path, 0, "clean", 0, 0.9),
        write_result(tmp_path, 1, "clean", 0, 0.8),
        write_result(tmp_path, 0, "centroid", 8, 0.7),
        write_result(tmp_path, 0, "random_target", 8, 0.6),
        write_result(tmp_path, 1, "centroid", 8, 0.5),
        write_result(tmp_path, 1, "random_target", 8, 0.55),
        write_result(tmp_path, 0, "random_target", 16, 0.1),  # another eps: not in the table
        write_result(tmp_path, 1, "random_target", 16, 0.1),
    ]
    names = ("long", "csv", "md", "tex", "paired_csv", "paired_md", "members_csv", "members_md",
             "attacks_csv", "attacks_md")  # fmt: skip
    out = {name: tmp_path / f"out.{name}" for name in names}
    write_tables(paths, 8, ["vanilla"], SUITES, out)
    main = pd.read_csv(out["csv"])
    row = main.iloc[0]
    assert row["clean NMI"] == "0.850 ± 0.071"
    assert row["label-free NMI"] == "0.550 ± 0.071"  # worst per seed: 0.6 and 0.5
    assert row["seeds"] == 2
    assert r"$\pm$" in out["tex"].read_text()
    assert "label-free NMI" in out["md"].read_text()
    attacks = pd.read_csv(out["attacks_csv"])
    assert attacks.iloc[0]["label-free worst"] in ("centroid", "random_target")


def test_single_seed_prints_the_value_alone():
    long = pd.DataFrame(
        [
            {"dataset": "d", "backbone": "b", "defense": "v", "seed": 0, "attack": a,
             "threat": t, "eps_255": e, "nmi": n, "f1": n, "recall@1": n, "ari": n,
             "nmi_chance": 0.5}
            for a, t, e, n in [("clean", "clean", 0, 0.9), ("centroid", "whitebox", 8, 0.4),
                               ("centroid", "transfer", 8, 0.1)]
        ]
    )  # fmt: skip
    row = main_table(long, 8, SUITES).iloc[0]
    assert row["clean NMI"] == "0.900" and row["label-free NMI"] == "0.400"


def test_single_seed_shows_the_kmeans_std_of_the_attack_that_is_the_worst_case():
    long = pd.DataFrame(
        [
            {"dataset": "d", "backbone": "b", "defense": "v", "seed": 0, "attack": a,
             "threat": t, "eps_255": e, "nmi": n, "nmi_std": s, "ari": n, "f1": n,
             "recall@1": n, "nmi_chance": 0.5}
            for a, t, e, n, s in [("clean", "clean", 0, 0.9, 0.001),
                                  ("centroid", "whitebox", 8, 0.4, 0.002),
                                  ("random_target", "whitebox", 8, 0.45, 0.009)]
        ]
    )  # fmt: skip
    row = main_table(long, 8, SUITES).iloc[0]
    assert row["clean NMI"] == "0.900 ± 0.001" and row["label-free NMI"] == "0.400 ± 0.002"


def suite_long_table() -> pd.DataFrame:
    """Two eps; per metric a different attack is the worst; `es` (outside every suite) is
    lowest of all and `oracle` is label-aware."""
    rows = [("clean", "clean", 0, 0.90, 0.60)]
    rows += [("centroid", "whitebox", e, 0.70 - e / 100, 0.40) for e in (8, 16)]
    rows += [("random_target", "whitebox", e, 0.75 - e / 100, 0.30) for e in (8, 16)]
    rows += [("oracle", "whitebox", e, 0.65 - e / 100, 0.35) for e in (8, 16)]
    rows += [("es", "whitebox", e, 0.10, 0.05) for e in (8, 16)]
    return pd.DataFrame(
        [
            {"dataset": "d", "backbone": "b", "defense": "v", "seed": 0, "attack": a,
             "threat": t, "eps_255": e, "source": "", "nmi": n, "ari": r, "f1": n,
             "recall@1": n, "nmi_chance": 0.5}
            for a, t, e, n, r in rows
        ]
    )  # fmt: skip


def test_worst_case_is_per_metric_over_the_suite_only():
    long = suite_long_table()
    row = main_table(long, 8, SUITES).iloc[0]
    assert row["label-free NMI"] == "0.620" and row["label-free ARI"] == "0.300"
    assert row["label-aware NMI"] == "0.570" and row["label-aware ARI"] == "0.300"


def test_table_figure_and_sanity_report_the_same_suite_worst_case():
    long = suite_long_table()
    table = main_table(long, 16, SUITES).iloc[0]
    curves = vs_eps_curves(long, "nmi", SUITES)
    figure = curves[(curves["eps_255"] == 16) & (curves["threat_model"] == "label-free")]
    sanity = sanity_table(long, {"stronger": {}, "monotone_tolerance": 0, "chance_margin": 0.05,
                                 "stronger_tolerance": 0.005, "transfer_tolerance": 0},
                          SUITES, 8)  # fmt: skip
    chance = sanity[sanity["check"].str.startswith("a: near chance")]
    label_free = chance[chance["threat_model"] == "label-free"]["value"].iloc[0]
    assert table["label-free NMI"] == "0.540"
    assert figure["nmi"].tolist() == pytest.approx([0.54])
    assert label_free.startswith("NMI 0.540")


def test_paired_differences_are_taken_seed_by_seed():
    rows = []
    for seed, (base, better) in enumerate([(0.5, 0.6), (0.7, 0.75), (0.4, 0.38)]):
        for defense, nmi in (("pgd_at", base), ("eat", better)):
            for attack, threat, eps, value in (
                ("clean", "clean", 0, 0.9),
                ("centroid", "whitebox", 8, nmi),
            ):
                rows.append(
                    {
                        "dataset": "d",
                        "backbone": "b",
                        "defense": defense,
                        "seed": seed,
                        "attack": attack,
                        "threat": threat,
                        "eps_255": eps,
                        "nmi": value,
                        "f1": value,
                        "recall@1": value,
                        "ari": value,
                        "nmi_chance": 0.5,
                    }
                )
    suites = {"label_free": ["centroid"], "label_aware": ["mi"]}  # no mi rows: adds nothing
    row = paired_table(pd.DataFrame(rows), 8, ["pgd_at"], suites).iloc[0]
    assert row["defense"] == "eat" and row["baseline"] == "pgd_at"
    assert row["Δ label-free NMI"] == "+0.043 ± 0.060"  # differences 0.10, 0.05, -0.02 (ddof 1)
    assert row["seeds ahead (label-free NMI)"] == "2/3"
    assert row["Δ label-aware ARI"] == row["Δ label-free ARI"]
    assert row["Δ clean NMI"] == "+0.000 ± 0.000"
