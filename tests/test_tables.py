"""Tables: the adversarial column is the worst case over attacks per seed; mean ± std over seeds."""

import json

import pandas as pd

from robdml.tables import main_table, paired_table, write_tables


def write_result(directory, seed, attack, eps, nmi, defense="vanilla"):
    metrics = {"nmi": nmi, "f1": nmi / 2, "recall@1": nmi, "ari": nmi - 0.5, "nmi_chance": 0.5}
    threat = "clean" if attack == "clean" else "whitebox"
    ids = {"dataset": "d", "backbone": "b", "defense": defense, "seed": seed,
           "attack": attack, "eps_255": eps, "threat": threat, "source": ""}  # fmt: skip
    path = directory / f"{defense}_{seed}_{attack}_{eps}.json"
    path.write_text(json.dumps({"ids": ids, "metrics": metrics, "config_hash": "x"}))
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
    names = ("long", "csv", "md", "tex", "paired_csv", "paired_md", "members_csv", "members_md")
    out = {name: tmp_path / f"out.{name}" for name in names}
    write_tables(paths, 8, ["vanilla"], out)
    main = pd.read_csv(out["csv"])
    row = main.iloc[0]
    assert row["clean NMI"] == "0.850 ± 0.071"
    assert row["adv NMI"] == "0.550 ± 0.071"  # worst per seed: 0.6 and 0.5
    assert row["seeds"] == 2
    assert r"$\pm$" in out["tex"].read_text()
    assert "| adv NMI" in out["md"].read_text().replace("|   adv NMI", "| adv NMI")


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
    row = main_table(long, 8).iloc[0]
    assert row["clean NMI"] == "0.900" and row["adv NMI"] == "0.400"


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
    row = paired_table(pd.DataFrame(rows), 8, ["pgd_at"]).iloc[0]  # fmt: skip
    assert row["defense"] == "eat" and row["baseline"] == "pgd_at"
    assert row["Δ adv NMI"] == "+0.043 ± 0.060"  # differences 0.10, 0.05, -0.02 (ddof 1)
    assert row["seeds ahead (adv NMI)"] == "2/3"
    assert row["Δ clean NMI"] == "+0.000 ± 0.000"
