"""Gradient-masking checks per model, on the worst case over each threat model's attack suite
(robdml.worst_case, the same numbers the tables and figures show), on every reported metric
(NMI, ARI, F1, R@1: robdml.tables.MAIN_METRICS): a suite converged in NMI need not be in R@1.

(a) no metric's worst case rises with eps by more than `monotone_tolerance`, over the whole sweep
    and the breaking eps; and the worst-case NMI is within `chance_margin` of chance at
    `breaking_eps_255`, an eps at which any image can be made to look like another class, so any
    model should be near chance there (64/255). Not the sweep's largest eps: at 16/255 on 224 px
    images a robust model should stay far above chance. Outside the sweep that eps is probed by
    `sanity.breaking_attacks` alone (records of threat 'breaking', in both halves: fewer attacks
    there can only fail the check wrongly, never pass it); null: the near-chance half is not run,
    and its row per model says so; a model without results at that eps fails it as not measured;
(b) running every suite attack with more steps, or with more restarts, lowers no metric's
    white-box worst case at the main eps by `stronger_tolerance` or more: else the suite had
    not converged;
(c) white-box is at least as strong as transfer from other models: else gradients are masked.
(a) judges the worst case the tables report (attacks crafted on an ensemble's members and on
transfer sources included); (b) and (c) the white-box suite alone, the attacks they question.
One row per (model, threat model, check); a failed check is reported with its numbers, never
dropped. A check that is not run passes, with a value that starts with NOT_RUN.
"""

import math

import pandas as pd

from robdml.config import variant_name
from robdml.tables import MAIN_METRICS
from robdml.worst_case import ATTACKERS, BREAKING, MODEL, WHITEBOX, threat_models, worst_case

NOT_RUN = "not run"


def measured(frame: pd.DataFrame) -> dict[str, str]:
    """The reported metrics `frame` has, column -> label."""
    return {metric: label for metric, label in MAIN_METRICS.items() if metric in frame}


def not_run(table: pd.DataFrame) -> pd.Series:
    """Which rows of a sanity table are checks that were not run."""
    return table["value"].astype(str).str.startswith(NOT_RUN)


def verdict(table: pd.DataFrame) -> str:
    """'40 checks, 0 failed.' (and how many were not run, if any)."""
    skipped = int(not_run(table).sum())
    failed = int((~table["passed"].astype(bool)).sum())
    return f"{len(table)} checks, {failed} failed" + (f", {skipped} not run." if skipped else ".")


def largest_rises(curve: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """Per metric label of a model's curve (sorted by eps): its largest rise from one eps to
    the next, and between which eps."""
    eps = curve["eps_255"].to_numpy(dtype=float)
    rises = {}
    for metric, label in measured(curve).items():
        steps = curve[metric].to_numpy(dtype=float)[1:] - curve[metric].to_numpy(dtype=float)[:-1]
        known = [i for i, step in enumerate(steps) if not math.isnan(step)]
        if known:
            i = max(known, key=lambda j: steps[j])
            rises[label] = (float(steps[i]), eps[i], eps[i + 1])
    return rises


def check_monotone_and_chance(
    worst: pd.DataFrame, threat: str, tolerance: float, margin: float, breaking_eps: float | None
) -> list[dict]:
    """Check (a) for every model: two rows, non-increasing in eps (every metric) and near
    chance at `breaking_eps` (NMI; None: not run)."""
    rows = []
    for model, curve in worst.sort_values("eps_255").groupby(MODEL):
        ids = dict(zip(MODEL, model, strict=True)) | {"threat_model": threat}
        rises = largest_rises(curve)
        if rises:
            label = max(rises, key=lambda name: rises[name][0])
            rise, low, high = rises[label]
            over = [name for name, (step, _, _) in rises.items() if step > tolerance]
            beyond = f"; over it: {', '.join(over)}" if over else ""
            value = f"largest rise {label} {rise:+.4f} at eps {low:g}->{high:g} "
            value += f"(tolerance {tolerance}{beyond})"
        else:
            rise, value = 0.0, f"{NOT_RUN}: one eps in the sweep"
        rows.append(ids | {"check": "a: non-increasing in eps", "value": value,
                           "passed": bool(rise <= tolerance)})  # fmt: skip
        rows.append(ids | near_chance(curve, margin, breaking_eps))
    return rows


def near_chance(curve: pd.DataFrame, margin: float, breaking_eps: float | None) -> dict:
    """Check (a)'s second row for one model's curve."""
    if breaking_eps is None:
        return {
            "check": "a: near chance at the breaking eps",
            "value": f"{NOT_RUN}: sanity.breaking_eps_255 is null",
            "passed": True,
        }
    check = f"a: near chance at eps {breaking_eps:g}"
    at = curve[curve["eps_255"] == breaking_eps]
    if at.empty:
        value = f"not measured: no worst case at eps {breaking_eps:g} (runs missing)"
        return {"check": check, "value": value, "passed": False}
    row = at.iloc[0]
    return {
        "check": check,
        "value": f"NMI {row['nmi']:.3f} vs chance {row['nmi_chance']:.3f}",
        "passed": bool(row["nmi"] - row["nmi_chance"] <= margin),
    }


def check_stronger(
    long: pd.DataFrame, attacks: list[str], threat: str, stronger: dict, eps: float,
    tolerance: float,
) -> list[dict]:  # fmt: skip
    """Check (b): the suite's worst case vs the same with every attack's stronger variant, on
    every metric; the value lists each before -> after and the metric that dropped most."""
    base = worst_case(long, attacks, attackers=WHITEBOX).query("eps_255 == @eps").set_index(MODEL)
    metrics = measured(base)
    rows = []
    for kind, value in stronger.items():
        variants = [variant_name(attack, kind, value) for attack in attacks]
        strong = worst_case(long, attacks + variants, attackers=WHITEBOX)
        strong = strong.query("eps_255 == @eps").set_index(MODEL)
        missing = set(variants) - set(long["attack"])
        for model in base.index:
            before, after = base.loc[model], strong.loc[model]
            drops = {
                metric: before[metric] - after[metric]
                for metric in metrics
                if not math.isnan(before[metric] - after[metric])
            }
            moved = ", ".join(
                f"{label} {before[metric]:.3f}->{after[metric]:.3f}"
                for metric, label in metrics.items()
            )
            if drops:
                most = max(drops, key=drops.get)
                moved += f"; most: {metrics[most]} {-drops[most]:+.4f} ({after[f'{most}_attack']})"
            rows.append(
                dict(zip(MODEL, model, strict=True))
                | {
                    "threat_model": threat,
                    "check": f"b: {kind} {value} at eps {eps:g}",
                    "value": moved
                    + (f"; missing: {', '.join(sorted(missing))}" if missing else ""),
                    "passed": bool(drops and max(drops.values()) < tolerance and not missing),
                }
            )
    return rows


def check_transfer(
    long: pd.DataFrame, worst: pd.DataFrame, threat: str, tolerance: float
) -> list[dict]:
    """Check (c): per model and eps, white-box worst case <= best transfer attack + tolerance."""
    transfer = long[long["threat"] == "transfer"]
    if transfer.empty:
        return []
    best_transfer = transfer.groupby(MODEL + ["eps_255"], as_index=False)["nmi"].min()
    merged = worst.merge(best_transfer, on=MODEL + ["eps_255"], suffixes=("", "_transfer"))
    rows = []
    for model, group in merged.groupby(MODEL):
        excess = group["nmi"] - group["nmi_transfer"]
        worst_row = group.loc[excess.idxmax()]
        rows.append(
            dict(zip(MODEL, model, strict=True))
            | {
                "threat_model": threat,
                "check": "c: white-box at least as strong as transfer",
                "value": (
                    f"eps {worst_row['eps_255']:g}: white-box NMI {worst_row['nmi']:.3f}, "
                    f"transfer {worst_row['nmi_transfer']:.3f}"
                ),
                "passed": bool(excess.max() <= tolerance),
            }
        )
    return rows


def sanity_table(long: pd.DataFrame, sanity: dict, suites: dict, main_eps: float) -> pd.DataFrame:
    """All checks for all models and threat models, one row per (model, threat model, check)."""
    rows = []
    for threat, attacks in threat_models(suites).items():
        # the tables' worst case, and the breaking-eps probe where it ran
        probed = worst_case(long, attacks, threat, attackers=ATTACKERS + (BREAKING,))
        rows += check_monotone_and_chance(
            probed,
            threat,
            sanity["monotone_tolerance"],
            sanity["chance_margin"],
            sanity["breaking_eps_255"],
        )
        rows += check_stronger(
            long, attacks, threat, sanity["stronger"], main_eps, sanity["stronger_tolerance"]
        )
        white = worst_case(long, attacks, threat, attackers=WHITEBOX)
        rows += check_transfer(long, white, threat, sanity["transfer_tolerance"])
    columns = MODEL + ["threat_model", "check", "value", "passed"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(MODEL + ["threat_model", "check"], kind="stable").reset_index(
        drop=True
    )
