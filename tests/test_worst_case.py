"""The worst case an ensemble is scored by (issue 25): attacks crafted on one of its members or
on a transfer source count next to the white-box ones, in the threat models their attack
belongs to, named with the model they were crafted on; checks that judge the white-box suite
itself (sanity (b), (c)) can still ask for it alone."""

import pandas as pd
import pytest

from robdml.cards import model_card
from robdml.sanity import sanity_table
from robdml.tables import attacks_table, main_table, members_table
from robdml.worst_case import WHITEBOX, worst_case

SUITES = {"label_free": ["random_target", "cluster_mi"], "label_aware": ["mi"]}
ENSEMBLE = {"dataset": "d", "backbone": "b", "defense": "eat", "seed": 0}


def ensemble_results(rows) -> pd.DataFrame:
    """Records of one ensemble: (attack, threat, source, eps, nmi, recall@1)."""
    return pd.DataFrame(
        [
            ENSEMBLE | {"attack": a, "threat": t, "source": s, "eps_255": e, "nmi": n,
                        "ami": n, "ari": n - 0.2, "f1": n / 2, "recall@1": r, "nmi_chance": 0.1}
            for a, t, s, e, n, r in rows
        ]
    )  # fmt: skip


ROWS = [
    ("clean", "clean", "", 0, 0.90, 0.80),
    ("random_target", "whitebox", "", 8, 0.70, 0.60),
    ("cluster_mi", "whitebox", "", 8, 0.65, 0.55),
    ("mi", "whitebox", "", 8, 0.60, 0.50),
    # crafted on member 1, evaluated on the ensemble: the label-free worst NMI
    ("cluster_mi", "member_attack", "member1", 8, 0.40, 0.58),
    # the label-aware member attack: lower still, but only for the label-aware attacker
    ("mi", "member_attack", "member2", 8, 0.30, 0.52),
    # transferred from vanilla: the lowest R@1 of the label-free attacks
    ("random_target", "transfer", "vanilla/seed1", 8, 0.68, 0.45),
    # a member evaluated alone is no attack on the ensemble
    ("cluster_mi", "member", "member0", 8, 0.05, 0.05),
]


def test_member_and_transfer_attacks_count_in_their_threat_model_with_their_source():
    long = ensemble_results(ROWS)
    free = worst_case(long, SUITES["label_free"]).iloc[0]
    assert free["nmi"] == 0.40 and free["nmi_attack"] == "cluster_mi on member1"
    assert free["recall@1"] == 0.45 and free["recall@1_attack"] == "random_target on vanilla/seed1"
    aware = worst_case(long, SUITES["label_free"] + SUITES["label_aware"]).iloc[0]
    assert aware["nmi"] == 0.30 and aware["nmi_attack"] == "mi on member2"
    # n_attacks counts the white-box suite attacks found: missing-run notes rely on it
    assert free["n_attacks"] == 2 and aware["n_attacks"] == 3


def test_the_white_box_suite_alone_is_still_available():
    white = worst_case(ensemble_results(ROWS), SUITES["label_free"], attackers=WHITEBOX).iloc[0]
    assert white["nmi"] == 0.65 and white["nmi_attack"] == "cluster_mi"
    assert white["recall@1"] == 0.55


def test_the_main_table_attacks_table_and_card_show_the_member_attack():
    long = ensemble_results(ROWS)
    main = main_table(long, 8, SUITES).frame().iloc[0]
    assert main["label-free NMI"] == "0.400" and main["label-aware NMI"] == "0.300"
    attacks = attacks_table(long, 8, SUITES).frame().iloc[0]
    assert attacks["label-free worst"] == "cluster_mi on member1"
    assert attacks["label-aware worst"] == "mi on member2"
    assert attacks["cluster_mi"] == "0.650"  # the per-attack columns stay white-box
    card = model_card(long, pd.DataFrame(columns=list(ENSEMBLE)), SUITES, ENSEMBLE, {})
    label_free = next(r for r in card["results"] if r["threat_model"] == "label-free")
    assert label_free["nmi"] == {"value": pytest.approx(0.40), "attack": "cluster_mi on member1"}


def test_sanity_checks_b_and_c_question_the_white_box_suite_alone():
    """(c) compares the white-box suite with transfer: a transfer stronger than it fails,
    although the reported worst case already includes that transfer. (b) asks whether the
    white-box suite converged: a member attack below every white-box attack does not hide a
    stronger variant that moves the white-box worst case."""
    rows = [r for r in ROWS if r[0] != "mi"]
    rows += [("random_target", "transfer", "vanilla/seed1", 8, 0.50, 0.45)]
    rows += [("cluster_mi_steps2x", "whitebox", "", 8, 0.55, 0.55)]
    settings = {"stronger": {"steps_factor": 2}, "monotone_tolerance": 0.005,
                "chance_margin": 0.05, "stronger_tolerance": 0.005, "transfer_tolerance": 0.0,
                "breaking_eps_255": None}  # fmt: skip
    suites = {"label_free": SUITES["label_free"], "label_aware": []}
    table = sanity_table(ensemble_results(rows), settings, suites, 8).set_index("check")
    assert not table.loc["c: white-box at least as strong as transfer", "passed"]
    assert "white-box NMI 0.650, transfer 0.500" in table.loc[
        "c: white-box at least as strong as transfer", "value"]  # fmt: skip
    stronger = table.loc["b: steps_factor 2 at eps 8"]
    assert not stronger["passed"] and "NMI 0.650->0.550" in stronger["value"]


def test_on_a_tie_the_white_box_attack_is_named():
    """A transfer source with the evaluated model's weights (an external model exported from
    it) gives the same values: the card names the white-box attack, not the transfer."""
    rows = [("clean", "clean", "", 0, 0.9, 0.8), ("cluster_mi", "transfer", "vanilla/seed0", 8,
             0.6, 0.5), ("cluster_mi", "whitebox", "", 8, 0.6, 0.5)]  # fmt: skip
    worst = worst_case(ensemble_results(rows), SUITES["label_free"]).iloc[0]
    assert worst["nmi_attack"] == "cluster_mi" and worst["recall@1_attack"] == "cluster_mi"


def test_the_members_table_shows_each_threat_models_worst_case_before_and_after():
    """White-box alone, member attacks alone, and the worst case over both and transfer; a
    second seed without member attacks averages what it has."""
    second = ensemble_results([r for r in ROWS if r[1] in ("clean", "whitebox")])
    long = pd.concat([ensemble_results(ROWS), second.assign(seed=1)], ignore_index=True)
    row = members_table(long, 8, SUITES).iloc[0]
    assert row["label-free white-box NMI"] == "0.650 ± 0.000"
    assert row["label-free member attack NMI"] == "0.400"
    assert row["label-free worst NMI"] == "0.525 ± 0.177"  # 0.40 and 0.65
    assert row["label-aware white-box NMI"] == "0.600 ± 0.000"
    assert row["label-aware member attack NMI"] == "0.300"
    assert row["seeds"] == 2
    assert "members clean NMI" not in row  # no member evaluated alone on the clean set
    assert members_table(second, 8, SUITES).empty  # no member records: no ensemble
