"""Tables: each threat model's column is the worst case over its suite per seed and metric;
mean ± std over seeds; the best mean bolded; runs missing from the grid listed; defenses in the
run's order; LaTeX with booktabs. The figures' and sanity checks' worst cases are the same
numbers."""

import json
import re
import subprocess
import sys

import pandas as pd
from result_toys import (
    GRID,
    SUITES,
    column,
    grid_results,
    suite_long_table,
    write_benchmark,
    write_result,
)  # fmt: skip

from conftest import REPO
from robdml.grid import Grid, load_results
from robdml.jobs import expected_transfer_sources
from robdml.tables import (
    attacks_table,
    main_table,
    paired_table,
    transfer_table,
    write_tables,
)
from robdml.worst_case import MODEL


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
    out = tmp_path / "out"
    write_tables(paths, 8, ["vanilla"], SUITES, out, benchmark_root=tmp_path / "none")
    main = pd.read_csv(out / "main.csv")
    row = main.iloc[0]
    assert row["clean NMI"] == "0.850 ± 0.071"
    assert row["label-free NMI"] == "0.550 ± 0.071"  # worst per seed: 0.6 and 0.5
    assert row["seeds"] == 2
    assert r"0.850 $\pm$ 0.071" in (out / "main.tex").read_text()
    assert "label-free NMI" in (out / "main.md").read_text()
    attacks = pd.read_csv(out / "attacks.csv")
    assert attacks.iloc[0]["label-free worst"] in ("centroid", "random_target")
    for name in ("main", "attacks", "transfer", "cost"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{name}.{ext}").stat().st_size > 0


def test_single_seed_prints_the_value_alone():
    long = pd.DataFrame(
        [
            {"dataset": "d", "backbone": "b", "defense": "v", "seed": 0, "attack": a,
             "threat": t, "eps_255": e, "nmi": n, "f1": n, "recall@1": n, "ari": n,
             "nmi_chance": 0.5}
            for a, t, e, n in [("clean", "clean", 0, 0.9), ("centroid", "whitebox", 8, 0.4),
                               ("centroid", "member", 8, 0.1)]  # a member alone: no attacker
        ]
    )  # fmt: skip
    row = main_table(long, 8, SUITES).frame().iloc[0]
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
    row = main_table(long, 8, SUITES).frame().iloc[0]
    assert row["clean NMI"] == "0.900 ± 0.001" and row["label-free NMI"] == "0.400 ± 0.002"


def test_worst_case_is_per_metric_over_the_suite_only():
    long = suite_long_table()
    row = main_table(long, 8, SUITES).frame().iloc[0]
    assert row["label-free NMI"] == "0.620" and row["label-free ARI"] == "0.300"
    assert row["label-aware NMI"] == "0.570" and row["label-aware ARI"] == "0.300"


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


# -- a grid of three defenses, two seeds ----------------------------------------------------------


def test_main_table_bolds_the_best_mean_and_only_it(tmp_path):
    table = main_table(load_results(grid_results(tmp_path)), 8, SUITES, GRID, kmeans_seeds=3)
    markdown = table.markdown()
    # means: clean 0.91, 0.82, 0.85; label-free worst 0.51, 0.72, 0.63 (std over 2 seeds)
    assert column(markdown, "clean NMI") == ["**0.910 ± 0.014**", "0.820 ± 0.028", "0.850 ± 0.000"]
    assert column(markdown, "label-free NMI") == [
        "0.510 ± 0.014", "**0.720 ± 0.028**", "0.630 ± 0.042"
    ]  # fmt: skip
    assert column(markdown, "chance NMI") == ["0.500"] * 3  # not a metric to win: never bold
    latex = table.latex()
    assert latex.count(r"\textbf{") == markdown.count("**") // 2 == 12  # 12 metric columns
    assert r"\textbf{0.720 $\pm$ 0.028}" in latex and r"\textbf{0.820" not in latex
    csv = table.frame()
    assert csv.loc[0, "clean NMI"] == "0.910 ± 0.014"  # the CSV has no markup
    assert "2 training seeds, each evaluated with 3 k-means seeds" in table.caption
    assert "Chance NMI of the clean clusterings (mean over models): d 0.500" in table.caption


def test_tied_best_values_are_all_bold_and_all_equal_values_none(tmp_path):
    long = load_results(grid_results(tmp_path))
    long.loc[(long["defense"] == "eat") & (long["threat"] == "clean"), "nmi"] = [0.90, 0.92]
    markdown = main_table(long, 8, SUITES, GRID).markdown()
    assert column(markdown, "clean NMI")[0].startswith("**0.910")
    assert column(markdown, "clean NMI")[2].startswith("**0.910")
    assert not column(markdown, "clean NMI")[1].startswith("**")
    long[["nmi", "ari", "f1", "recall@1"]] = 0.5
    assert "**" not in main_table(long, 8, SUITES, GRID).markdown().split("Missing")[0]


def test_rows_follow_the_given_defense_order(tmp_path):
    long = load_results(grid_results(tmp_path))
    for order in (["vanilla", "pgd_at", "eat"], ["eat", "vanilla", "pgd_at"]):
        grid = Grid(["d"], ["b"], order, [0, 1])
        for build in (main_table, attacks_table, transfer_table):
            assert list(build(long, 8, SUITES, grid).frame()["defense"]) == order
    # without a grid: sorted (the records' order is not the run's)
    assert list(main_table(long, 8, SUITES).frame()["defense"]) == ["eat", "pgd_at", "vanilla"]


def test_a_missing_run_is_listed_in_the_notes_not_dropped(tmp_path):
    skip = {("eat", 1, attack) for attack in ("clean", "centroid", "random_target", "oracle")}
    skip |= {("pgd_at", 0, "random_target")}
    grid = Grid(["d"], ["b"], ["vanilla", "pgd_at", "eat", "mixup"], [0, 1])
    table = main_table(load_results(grid_results(tmp_path, skip)), 8, SUITES, grid)
    assert table.notes == [
        "d/b/pgd_at seed 0: no random_target at eps 8/255 (label-free suite 1 of 2 attacks, "
        "label-aware suite 2 of 3 attacks)",
        "d/b/eat seed 1: no records (its jobs did not run or failed)",
        "d/b/mixup seed 0: no records (its jobs did not run or failed)",
        "d/b/mixup seed 1: no records (its jobs did not run or failed)",
    ]
    markdown, latex = table.markdown(), table.latex()
    assert "Missing from the grid" in markdown
    for note in table.notes:
        assert f"- {note}" in markdown
    assert r"d/b/pgd\_at seed 0: no random\_target at eps 8/255" in latex
    assert column(markdown, "defense")[-1] == "mixup"  # kept as a row, without values
    assert column(markdown, "clean NMI")[-1] == "–" and column(markdown, "seeds")[-1] == "0"
    assert column(markdown, "seeds")[2] == "1"  # eat: one seed left
    complete = main_table(load_results(grid_results(tmp_path)), 8, SUITES, GRID)
    assert complete.notes == [] and "Missing" not in complete.markdown()
    clean_only = {("vanilla", 0, a) for a in ("centroid", "random_target", "oracle")}
    notes = main_table(load_results(grid_results(tmp_path, clean_only)), 8, SUITES, GRID).notes
    assert notes == [
        "d/b/vanilla seed 0: no centroid, random_target, oracle at eps 8/255 (label-free "
        "suite 0 of 2 attacks, label-aware suite 0 of 3 attacks)"
    ]


def test_latex_is_booktabs_with_balanced_environments(tmp_path):
    skip = {("eat", 1, "clean")}
    long = load_results(grid_results(tmp_path, skip))
    for table in (main_table(long, 8, SUITES, GRID), attacks_table(long, 8, SUITES, GRID)):
        latex = table.latex()
        for environment in ("table", "tabular"):
            assert latex.count(rf"\begin{{{environment}}}") == 1
            assert latex.count(rf"\end{{{environment}}}") == 1
        begin, end = latex.index(r"\begin{tabular}"), latex.index(r"\end{tabular}")
        assert latex.index(r"\begin{table}") < begin < end < latex.index(r"\end{table}")
        body = latex[begin:end]
        assert body.index(r"\toprule") < body.index(r"\midrule") < body.index(r"\bottomrule")
        n_columns = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", latex)[1])
        rows = [line for line in body.splitlines() if line.endswith(r"\\")]
        data = [row for row in rows if not row.startswith(" &") and "multicolumn" not in row]
        assert data and all(row.count(" & ") == n_columns - 1 for row in data)
        assert latex.count("{") == latex.count("}")
        assert r"pgd\_at" in latex and "pgd_at" not in latex.replace(r"pgd\_at", "")
        assert "±" not in latex and r"$\pm$" in latex
        assert r"\footnotesize Missing from the grid" in latex  # eat seed 1: no clean record


def test_attacks_table_has_every_attack_with_mean_std_and_bold(tmp_path):
    table = attacks_table(load_results(grid_results(tmp_path)), 8, SUITES, GRID)
    markdown = table.markdown()
    assert column(markdown, "random_target") == [
        "0.510 ± 0.014", "**0.720 ± 0.028**", "0.630 ± 0.042"
    ]  # fmt: skip
    assert column(markdown, "oracle")[1] == "**0.620 ± 0.028**"
    assert column(markdown, "label-free worst") == ["random_target"] * 3
    assert column(markdown, "label-aware worst") == ["oracle"] * 3
    assert table.latex().count(r"\textbf{") == 3


def test_transfer_matrix_is_the_worst_transferred_attack_per_seed_then_mean(tmp_path):
    paths = grid_results(tmp_path)
    transfer = [  # target, seed, source, attack, nmi
        ("pgd_at", 0, "vanilla/seed1", "centroid", 0.78),
        ("pgd_at", 0, "vanilla/seed1", "mi", 0.76),
        ("pgd_at", 1, "vanilla/seed0", "centroid", 0.80),
        ("pgd_at", 1, "vanilla/seed0", "mi", 0.82),
        ("eat", 0, "vanilla/seed1", "centroid", 0.70),
        ("eat", 0, "pgd_at/seed1", "centroid", 0.60),
        ("vanilla", 1, "pgd_at/seed0", "centroid", 0.55),
    ]  # fmt: skip
    for target, seed, source, attack, nmi in transfer:
        paths.append(write_result(tmp_path, seed, attack, 8, nmi, target, "transfer", source))
        paths.append(write_result(tmp_path, seed, attack, 16, 0.1, target, "transfer", source))
    run = {"datasets": ["d"], "backbones": ["b"], "defenses": ["vanilla", "pgd_at", "eat"],
           "seeds": [0, 1]}  # fmt: skip
    config = {"run": run, "transfer": {"attacks": ["centroid", "mi"], "source_seed_offset": 1,
                                       "source_defenses": ["vanilla", "pgd_at"]}}  # fmt: skip
    models = [dict(zip(MODEL, model, strict=True)) for model in Grid.from_config(run).models()]
    grid = Grid.from_config(run | {"transfer_sources": expected_transfer_sources(config, models)})
    table = transfer_table(load_results(paths), 8, SUITES, grid)
    frame = table.frame().set_index("defense")
    assert list(frame.columns[-3:]) == ["from vanilla", "from pgd_at", "white-box label-free"]
    # pgd_at: min over attacks per seed 0.76, 0.80 -> mean 0.78, std 0.028
    assert frame.loc["pgd_at", "from vanilla"] == "0.780 ± 0.028"
    assert frame.loc["eat", "from vanilla"] == "0.700"  # one seed, no k-means std: alone
    assert frame.loc["eat", "from pgd_at"] == "0.600"
    assert frame.loc["vanilla", "from pgd_at"] == "0.550"
    assert frame.loc["vanilla", "from vanilla"] == "–"
    assert frame.loc["pgd_at", "white-box label-free"] == "0.720 ± 0.028"
    assert "**0.780 ± 0.028**" in table.markdown()
    assert "d/b/eat seed 1: no transfer record from vanilla/seed0" in table.notes
    assert "d/b/pgd_at seed 0: no transfer record from pgd_at/seed1" in table.notes
    assert not any("d/b/pgd_at seed 0: no transfer record from vanilla" in n for n in table.notes)


def test_the_tables_script_writes_every_table_from_its_arguments(tmp_path):
    paths = grid_results(tmp_path)
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(map(str, paths)))
    root = tmp_path / "benchmarks"
    write_benchmark(root, "train", "eat", 0, 60)
    write_benchmark(root, "train", "mart", 0, 5)  # another run's model: not in the table
    grid = {"datasets": ["d"], "backbones": ["b"], "defenses": ["eat", "vanilla", "pgd_at"],
            "seeds": [0, 1]}  # fmt: skip
    run = subprocess.run(
        [sys.executable, str(REPO / "src/tables.py"), "--inputs", str(inputs), "--main-eps", "8",
         "--suites", json.dumps(SUITES), "--grid", json.dumps(grid), "--kmeans-seeds", "3",
         "--benchmark-root", str(root), "--config-hash", "abc",
         "--provenance", str(tmp_path / "provenance.json"), "--out-dir",
         str(tmp_path / "out"), "--baselines", "vanilla"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    assert list(pd.read_csv(out / "main.csv")["defense"]) == ["eat", "vanilla", "pgd_at"]
    assert "3 k-means seeds" in (out / "main.md").read_text()
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["config_hash"] == "abc" and provenance["metrics_files"] == len(paths)
    assert f"Produced by commit {provenance['commit'][:10]}" in (out / "main.md").read_text()
    cost = pd.read_csv(out / "cost.csv").set_index("defense")
    assert cost.loc["eat", "train (s)"] == 60 and pd.isna(cost.loc["vanilla", "train (s)"])
    assert "mart" not in cost.index
    for name in ("long.csv", "paired.csv", "paired.md", "members.csv", "members.md"):
        assert (out / name).exists()
