"""Gradient-masking checks per model, on the worst case over each threat model's attack suite
(robdml.worst_case, the same numbers the tables and figures show).

(a) the worst-case NMI does not rise with eps (beyond a tolerance) and is near chance at the
    largest eps;
(b) running every suite attack with more steps, or with more restarts, lowers the suite's
    worst-case NMI at the main eps by less than a tolerance: else the suite had not converged;
(c) white-box is at least as strong as transfer from other models: else gradients are masked.
A failed check is reported with its numbers, never dropped.
"""

import pandas as pd

from robdml.config import variant_name
from robdml.worst_case import MODEL, threat_models, worst_case


def check_monotone_and_chance(
    worst: pd.DataFrame, threat: str, tolerance: float, margin: float
) -> list[dict]:
    """Check (a) for every model."""
    rows = []
    for model, curve in worst.sort_values("eps_255").groupby(MODEL):
        rises = curve["nmi"].diff().fillna(0)
        largest = curve.iloc[-1]
        ids = dict(zip(MODEL, model, strict=True)) | {"threat_model": threat}
        rows.append(
            ids
            | {
                "check": "a: non-increasing in eps",
                "value": f"largest rise {rises.max():+.4f} (tolerance {tolerance})",
                "passed": bool(rises.max() <= tolerance),
            }
        )
        gap = largest["nmi"] - largest["nmi_chance"]
        rows.append(
            ids
            | {
                "check": f"a: near chance at eps {largest['eps_255']:g}",
                "value": f"NMI {largest['nmi']:.3f} vs chance {largest['nmi_chance']:.3f}",
                "passed": bool(gap <= margin),
            }
        )
    return rows


def check_stronger(
    long: pd.DataFrame, attacks: list[str], threat: str, stronger: dict, eps: float,
    tolerance: float,
) -> list[dict]:  # fmt: skip
    """Check (b): the suite's worst case vs the same with every attack's stronger variant."""
    base = worst_case(long, attacks).query("eps_255 == @eps").set_index(MODEL)
    rows = []
    for kind, value in stronger.items():
        variants = [variant_name(attack, kind, value) for attack in attacks]
        strong = worst_case(long, attacks + variants).query("eps_255 == @eps").set_index(MODEL)
        missing = set(variants) - set(long["attack"])
        for model in base.index:
            before, after = base.loc[model], strong.loc[model]
            rows.append(
                dict(zip(MODEL, model, strict=True))
                | {
                    "threat_model": threat,
                    "check": f"b: {kind} {value} at eps {eps:g}",
                    "value": f"NMI {before['nmi']:.3f} -> {after['nmi']:.3f} "
                    f"({after['nmi_attack']})"
                    + (f"; missing: {', '.join(sorted(missing))}" if missing else ""),
                    "passed": bool(before["nmi"] - after["nmi"] < tolerance and not missing),
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
        worst = worst_case(long, attacks, threat)
        rows += check_monotone_and_chance(
            worst, threat, sanity["monotone_tolerance"], sanity["chance_margin"]
        )
        rows += check_stronger(
            long, attacks, threat, sanity["stronger"], main_eps, sanity["stronger_tolerance"]
        )
        rows += check_transfer(long, worst, threat, sanity["transfer_tolerance"])
    columns = MODEL + ["threat_model", "check", "value", "passed"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(MODEL + ["threat_model", "check"], kind="stable").reset_index(
        drop=True
    )
