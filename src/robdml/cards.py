"""A robustness card per trained model: clean and worst-case NMI, ARI and R@1 per eps for each
threat model, the attack that achieved each, the model's sanity checks, the threat model and
the provenance, as JSON (to compare models by script) and Markdown (to read). Built from the
same long table and worst cases as every table and figure, so two cards compare like with
like."""

import pandas as pd

from robdml.provenance import provenance_text
from robdml.worst_case import MODEL, threat_models, worst_case

CARD_METRICS = {"nmi": "NMI", "ari": "ARI", "recall@1": "R@1"}


def value(number) -> float | None:
    return None if pd.isna(number) else float(number)


def model_card(
    long: pd.DataFrame,
    sanity: pd.DataFrame,
    suites: dict,
    model: dict,
    provenance: dict,
    external: dict | None = None,
) -> dict:
    """The card of `model` ({dataset, backbone, defense, seed}) from the run's long table,
    sanity table and provenance record; `external`: the config entry of an external model
    (robdml.models.external), None for a model the workflow trained."""
    mine = long
    for key in MODEL:
        mine = mine[mine[key] == model[key]]
    clean = mine[mine["threat"] == "clean"]
    rows = [
        {"eps_255": 0.0, "threat_model": "clean"}
        | {
            metric: {"value": value(clean[metric].iloc[0]), "attack": None}
            for metric in CARD_METRICS
            if not clean.empty
        }
    ]
    for name, attacks in threat_models(suites).items():
        worst = worst_case(mine, attacks)
        for _, row in worst.sort_values("eps_255").iterrows():
            rows.append(
                {"eps_255": float(row["eps_255"]), "threat_model": name}
                | {
                    metric: {"value": value(row[metric]), "attack": row[f"{metric}_attack"]}
                    for metric in CARD_METRICS
                }
            )
    checks = sanity
    for key in MODEL:
        checks = checks[checks[key] == model[key]]
    return {
        "model": model,
        "external": external,
        "threat_model": {
            "norm": "L-inf, in 1/255 of the [0, 1] pixel range; images delivered as 8-bit",
            "inference": "k-means on the test embeddings, k = the number of test classes",
            "suites": {name: attacks for name, attacks in threat_models(suites).items()},
        },
        "results": rows,
        "sanity": [
            {
                "threat_model": c["threat_model"],
                "check": c["check"],
                "value": c["value"],
                "passed": bool(c["passed"]),
            }
            for _, c in checks.iterrows()
        ],  # fmt: skip
        "provenance": provenance,
    }


def card_markdown(card: dict) -> str:
    """A card for reading: one table of the results, the sanity checks, the provenance."""
    model = card["model"]
    lines = [
        f"# {model['defense']} ({model['dataset']}, {model['backbone']}, seed {model['seed']})",
        "",
    ]
    if card.get("external"):
        entry = card["external"]
        weights = f"weights `{entry['weights']}`" if entry.get("weights") else "no weights file"
        lines += [
            f"External model: factory `{entry['factory']}`, {weights}; evaluated in the "
            f"{model['backbone']} block in the place of seed {model['seed']}.",
            "",
        ]
    if card.get("suite"):
        lines += [f"Attack suite: {card['suite']} (robdml.suites).", ""]
    lines += [
        f"Threat model: {card['threat_model']['norm']}; {card['threat_model']['inference']}. "
        + "; ".join(
            f"{name}: worst case over {', '.join(attacks)}"
            for name, attacks in card["threat_model"]["suites"].items()
        )
        + ".",
        "",
        "| eps (/255) | threat model | " + " | ".join(CARD_METRICS.values()) + " |",
        "|---:|:--|" + "---|" * len(CARD_METRICS),
    ]
    for row in card["results"]:
        cells = []
        for metric in CARD_METRICS:
            entry = row.get(metric)
            if entry is None or entry["value"] is None:
                cells.append("–")
            else:
                attack = f" ({entry['attack']})" if entry["attack"] else ""
                cells.append(f"{entry['value']:.3f}{attack}")
        lines.append(f"| {row['eps_255']:g} | {row['threat_model']} | " + " | ".join(cells) + " |")
    failed = sum(not check["passed"] for check in card["sanity"])
    lines += ["", f"Sanity checks: {len(card['sanity'])}, {failed} failed.", ""]
    lines += [
        f"- {'pass' if check['passed'] else '**FAIL**'}: {check['threat_model']} "
        f"{check['check']}: {check['value']}"
        for check in card["sanity"]
    ]
    lines += ["", provenance_text(card["provenance"]), ""]
    return "\n".join(lines)
