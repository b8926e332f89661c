"""The sanity checks (robdml.sanity): (a) near chance at the breaking eps and non-increasing
in eps, per metric; (b) stronger attacks move no worst case; each reads the same worst case the
tables and figures report."""

import pandas as pd
import pytest
from result_toys import SUITES, suite_long_table

from robdml.figures import vs_eps_curves
from robdml.sanity import sanity_table, verdict
from robdml.tables import MAIN_METRICS, main_table
from robdml.worst_case import suite_worst_cases


def test_table_figure_and_sanity_report_the_same_suite_worst_case():
    long = suite_long_table()
    table = main_table(long, 16, SUITES).frame().iloc[0]
    curves = vs_eps_curves(long, "nmi", SUITES)
    figure = curves[(curves["eps_255"] == 16) & (curves["threat_model"] == "label-free")]
    sanity = sanity_table(long, SANITY | {"breaking_eps_255": 16}, SUITES, 8)
    chance = sanity[sanity["check"].str.startswith("a: near chance")]
    label_free = chance[chance["threat_model"] == "label-free"]["value"].iloc[0]
    assert table["label-free NMI"] == "0.540"
    assert figure["nmi"].tolist() == pytest.approx([0.54])
    assert label_free.startswith("NMI 0.540")


SANITY = {"stronger": {}, "monotone_tolerance": 0.005, "chance_margin": 0.05,
          "breaking_eps_255": 64, "stronger_tolerance": 0.005, "transfer_tolerance": 0}  # fmt: skip


METRIC_COLUMNS = ("nmi", "ari", "f1", "recall@1")


def sanity_long(points) -> pd.DataFrame:
    """One model, white-box rows (attack, eps, {metric: value}); unnamed metrics equal NMI."""
    return pd.DataFrame(
        [
            {"dataset": "d", "backbone": "b", "defense": "v", "seed": 0, "attack": attack,
             "threat": "whitebox", "eps_255": eps, "source": "", "nmi_chance": 0.5,
             **{metric: values.get(metric, values["nmi"]) for metric in METRIC_COLUMNS}}
            for attack, eps, values in points
        ]
    )  # fmt: skip


def check_row(table, check_prefix, threat="label-free") -> pd.Series:
    rows = table[table["check"].str.startswith(check_prefix) & (table["threat_model"] == threat)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


ROBUST = [("centroid", 8, {"nmi": 0.80}), ("centroid", 16, {"nmi": 0.70}),
          ("centroid", 64, {"nmi": 0.52})]  # fmt: skip


def test_check_a_is_near_chance_at_the_breaking_eps_not_at_the_largest():
    """A robust model far above chance at 16/255 and near it at 64/255 passes when 64 is the
    breaking eps, and fails when the breaking eps is 16 (the paper sweep's largest before 64
    joined it), although the largest eps here is near chance."""
    passing = check_row(sanity_table(sanity_long(ROBUST), SANITY, SUITES, 8), "a: near chance")
    assert passing["check"] == "a: near chance at eps 64" and passing["passed"]
    assert passing["value"] == "NMI 0.520 vs chance 0.500"
    flagged = sanity_table(sanity_long(ROBUST), SANITY | {"breaking_eps_255": 16}, SUITES, 8)
    flagged = check_row(flagged, "a: near chance")
    assert flagged["check"] == "a: near chance at eps 16" and not flagged["passed"]
    assert flagged["value"] == "NMI 0.700 vs chance 0.500"


def test_check_a_without_results_at_the_breaking_eps_is_not_measured_and_fails():
    """Near chance at the largest eps measured does not stand in for the breaking eps."""
    long = sanity_long([("centroid", 8, {"nmi": 0.80}), ("centroid", 16, {"nmi": 0.51})])
    row = check_row(sanity_table(long, SANITY, SUITES, 8), "a: near chance")
    assert row["check"] == "a: near chance at eps 64" and not row["passed"]
    assert row["value"].startswith("not measured: no worst case at eps 64")


def test_check_a_reads_the_breaking_probe_which_no_reported_worst_case_does():
    """A probe at 64/255 (threat 'breaking': suite attacks at a breaking eps outside the sweep)
    is part of both halves of check (a); the tables' worst case sees the sweep alone."""
    sweep = sanity_long([("centroid", 8, {"nmi": 0.80}), ("centroid", 16, {"nmi": 0.70})])
    for probed, passed in ((0.52, True), (0.75, False)):
        probe = sanity_long([("centroid", 64, {"nmi": probed})]).assign(threat="breaking")
        long = pd.concat([sweep, probe], ignore_index=True)
        table = sanity_table(long, SANITY, SUITES, 8)
        row = check_row(table, "a: near chance")
        assert row["passed"] == passed and row["value"] == f"NMI {probed:.3f} vs chance 0.500"
        monotone = check_row(table, "a: non-increasing")
        largest = "at eps 8->16" if passed else "at eps 16->64"  # the probe read
        assert monotone["passed"] == passed and largest in monotone["value"]
        assert set(suite_worst_cases(long, SUITES)["eps_255"]) == {8, 16}


def test_check_a_with_a_null_breaking_eps_says_not_run_in_one_row_per_model():
    long = sanity_long([("centroid", 8, {"nmi": 0.80}), ("oracle", 8, {"nmi": 0.75})])
    table = sanity_table(long, SANITY | {"breaking_eps_255": None}, SUITES, 8)
    chance = table[table["check"].str.startswith("a: near chance")]
    assert list(chance["threat_model"]) == ["label-aware", "label-free"]  # one per model
    assert (chance["check"] == "a: near chance at the breaking eps").all()
    assert chance["value"].str.startswith("not run: sanity.breaking_eps_255 is null").all()
    assert chance["passed"].all() and table["passed"].dtype == bool
    assert verdict(table) == "4 checks, 0 failed, 4 not run."  # one eps: nor is non-increasing


BASE = {"nmi": 0.80, "ari": 0.40, "f1": 0.60, "recall@1": 0.90}


@pytest.mark.parametrize("metric", METRIC_COLUMNS)
def test_check_a_non_increasing_fails_when_any_one_metric_rises(metric):
    """One row per model and threat model, naming the metric that rose most."""
    at_16 = {name: value + (0.01 if name == metric else -0.1) for name, value in BASE.items()}
    at_64 = {name: value - 0.3 for name, value in BASE.items()}
    long = sanity_long([("centroid", 8, BASE), ("centroid", 16, at_16), ("centroid", 64, at_64)])
    row = check_row(sanity_table(long, SANITY, SUITES, 8), "a: non-increasing")
    label = MAIN_METRICS[metric]
    assert not row["passed"]
    assert (
        row["value"]
        == f"largest rise {label} +0.0100 at eps 8->16 (tolerance 0.005; over it: {label})"
    )
    steady = check_row(sanity_table(sanity_long(ROBUST), SANITY, SUITES, 8), "a: non-increasing")
    assert steady["passed"]


def stronger_long(metric: str, drop: float) -> pd.DataFrame:
    """The suite at eps 8, and each label-free attack with twice its steps, which lowers
    `metric` by `drop` and leaves the other metrics as they were."""
    stronger = BASE | {metric: BASE[metric] - drop}
    points = [(attack, 8, BASE) for attack in ("centroid", "random_target", "oracle")]
    points += [(f"{attack}_steps2x", 8, stronger) for attack in ("centroid", "random_target")]
    return sanity_long(points + [("oracle_steps2x", 8, BASE)])


@pytest.mark.parametrize("metric", METRIC_COLUMNS)
def test_check_b_fails_when_any_one_metrics_worst_case_moves(metric):
    """Check (b) on NMI, ARI, F1 and R@1: a suite converged in NMI need not be in R@1."""
    stronger = SANITY | {"stronger": {"steps_factor": 2}}
    table = sanity_table(stronger_long(metric, 0.02), stronger, SUITES, 8)
    moved = {name: f"{value:.3f}->{value - 0.02 * (name == metric):.3f}"
             for name, value in BASE.items()}  # fmt: skip
    for threat in ("label-free", "label-aware"):  # the label-aware suite has the label-free one
        row = check_row(table, "b: steps_factor 2 at eps 8", threat)
        assert not row["passed"]
        assert row["value"] == (
            f"NMI {moved['nmi']}, ARI {moved['ari']}, F1 {moved['f1']}, R@1 {moved['recall@1']}; "
            f"most: {MAIN_METRICS[metric]} -0.0200 (centroid_steps2x)"
        )
    converged = sanity_table(stronger_long(metric, 0.004), stronger, SUITES, 8)
    assert converged.loc[converged["check"].str.startswith("b: "), "passed"].all()
