"""Gradient-masking checks per model, on the worst case over white-box attacks (NMI).

(a) robust NMI does not rise with eps (beyond a tolerance) and is near chance at the largest eps;
(b) a stronger attack (more steps, restarts) lowers NMI by less than a tolerance: else the
    configured attack had not converged;
(c) white-box is at least as strong as transfer from other models: else gradients are masked.
A failed check is reported with its numbers, never dropped.
"""

import pandas as pd

MODEL = ["dataset", "backbone", "defense", "seed"]


def worst_whitebox(long: pd.DataFrame, exclude: set[str]) -> pd.DataFrame:
    """Per model and eps: the lowest NMI over white-box attacks (minus `exclude`) and chance."""
    attacked = long[(long["threat"] == "whitebox") & ~long["attack"].isin(exclude)]
    return attacked.groupby(MODEL + ["eps_255"], as_index=False).agg(
        nmi=("nmi", "min"), nmi_chance=("nmi_chance", "mean")
    )


def check_monotone_and_chance(worst: pd.DataFrame, tolerance: float, margin: float) -> list[dict]:
    """Check (a) for every model."""
    rows = []
    for model, curve in worst.sort_values("eps_255").groupby(MODEL):
        rises = curve["nmi"].diff().fillna(0)
        largest = curve.iloc[-1]
        rows.append(
            {
                **dict(zip(MODEL, model, strict=True)),
                "check": "a: non-increasing in eps",
                "value": f"largest rise {rises.max():+.4f} (tolerance {tolerance})",
                "passed": bool(rises.max() <= tolerance),
            }
        )
        gap = largest["nmi"] - largest["nmi_chance"]
        rows.append(
            {
                **dict(zip(MODEL, model, strict=True)),
                "check": f"a: near chance at eps {largest['eps_255']:g}",
                "value": f"NMI {largest['nmi']:.3f} vs chance {largest['nmi_chance']:.3f}",
                "passed": bool(gap <= margin),
            }
        )
    return rows


def check_stronger(
    long: pd.DataFrame, stronger: dict[str, list[str]], eps: float, tolerance: float
) -> list[dict]:
    """Check (b): each stronger variant against its base attack at `eps`."""
    at_eps = long[(long["threat"] == "whitebox") & (long["eps_255"] == eps)]
    nmi = at_eps.set_index(MODEL + ["attack"])["nmi"]
    rows = []
    for model in at_eps[MODEL].drop_duplicates().itertuples(index=False):
        for base, variants in stronger.items():
            for variant in variants:
                base_nmi, variant_nmi = nmi[(*model, base)], nmi[(*model, variant)]
                rows.append(
                    {
                        **dict(zip(MODEL, model, strict=True)),
                        "check": f"b: {variant} vs {base} at eps {eps:g}",
                        "value": f"NMI {base_nmi:.3f} -> {variant_nmi:.3f}",
                        "passed": bool(base_nmi - variant_nmi < tolerance),
                    }
                )
    return rows


def check_transfer(long: pd.DataFrame, worst: pd.DataFrame, tolerance: float) -> list[dict]:
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
            {
                **dict(zip(MODEL, model, strict=True)),
                "check": "c: white-box at least as strong as transfer",
                "value": (
                    f"eps {worst_row['eps_255']:g}: white-box NMI {worst_row['nmi']:.3f}, "
                    f"transfer {worst_row['nmi_transfer']:.3f}"
                ),
                "passed": bool(excess.max() <= tolerance),
            }
        )
    return rows


def sanity_table(long: pd.DataFrame, sanity: dict, main_eps: float) -> pd.DataFrame:
    """All checks for all models, one row per (model, check)."""
    variants = {v for vs in sanity["stronger_attacks"].values() for v in vs}
    worst = worst_whitebox(long, exclude=variants)
    rows = check_monotone_and_chance(worst, sanity["monotone_tolerance"], sanity["chance_margin"])
    rows += check_stronger(long, sanity["stronger_attacks"], main_eps, sanity["stronger_tolerance"])
    rows += check_transfer(long, worst, sanity["transfer_tolerance"])
    table = pd.DataFrame(rows, columns=MODEL + ["check", "value", "passed"])
    return table.sort_values(MODEL + ["check"], kind="stable").reset_index(drop=True)
