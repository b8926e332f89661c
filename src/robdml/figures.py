"""Figures (seaborn) from the long results table; each saved as PNG and PDF."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from robdml.io import atomic_write  # noqa: E402
from robdml.worst_case import suite_worst_cases, threat_models  # noqa: E402


def save(figure, stem: Path) -> None:
    """Write `stem`.png and `stem`.pdf atomically."""
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        atomic_write(path, lambda tmp, s=suffix: figure.savefig(tmp, format=s[1:], dpi=150))
    plt.close(figure)


def nmi_by_defense(long: pd.DataFrame, eps_255: float, suites: dict, stem: Path) -> None:
    """Bar plot: NMI of every defense, clean and the worst case of each threat model at
    `eps_255`, per dataset/backbone panel; error bars are the std over seeds. The dashed line
    is chance NMI."""
    clean = long[long["threat"] == "clean"].assign(condition="clean")
    worst = suite_worst_cases(long, suites)
    worst = worst[worst["eps_255"] == eps_255]
    worst = worst.assign(condition=worst["threat_model"] + f" worst ({eps_255:g}/255)")
    selected = pd.concat([clean, worst], ignore_index=True)
    selected["setting"] = selected["dataset"] + " / " + selected["backbone"]
    grid = sns.catplot(
        data=selected, kind="bar", x="defense", y="nmi", hue="condition", col="setting",
        errorbar="sd", height=3.5, aspect=1.4, sharey=True,
    )  # fmt: skip
    chance = selected["nmi_chance"].mean()
    for axis in grid.axes.flat:
        axis.axhline(chance, color="grey", linestyle="--", linewidth=1)
        axis.tick_params(axis="x", rotation=30)
    grid.set_axis_labels("defense", "NMI (k-means, test classes)")
    save(grid.figure, stem)


def vs_eps_curves(long: pd.DataFrame, metric: str, suites: dict) -> pd.DataFrame:
    """Per model, threat model and eps: the suite's worst case of `metric`; eps 0 is clean."""
    clean = long[long["threat"] == "clean"].copy()
    clean["eps_255"] = 0.0
    ids = ["dataset", "backbone", "defense", "seed", "eps_255"]
    curves = [clean[ids + [metric]].assign(threat_model=name) for name in threat_models(suites)]
    curves.append(suite_worst_cases(long, suites)[ids + [metric, "threat_model"]])
    return pd.concat(curves, ignore_index=True)


def metric_vs_eps(long: pd.DataFrame, metric: str, suites: dict, stem: Path) -> None:
    """Line plot of vs_eps_curves: one row of panels per threat model, one line per defense
    (colour, marker and dash, so a dozen defenses stay apart). The dashed line is chance NMI."""
    curve = vs_eps_curves(long, metric, suites)
    curve["setting"] = curve["dataset"] + " / " + curve["backbone"]
    grid = sns.relplot(
        data=curve, kind="line", x="eps_255", y=metric, hue="defense", style="defense",
        markers=True, col="setting", row="threat_model", errorbar="sd", height=3.5, aspect=1.3,
    )  # fmt: skip
    if metric == "nmi":
        for axis in grid.axes.flat:
            axis.axhline(long["nmi_chance"].mean(), color="grey", linestyle="--", linewidth=1)
    grid.set_axis_labels("eps (/255), worst case over the suite", metric)
    grid.set_titles("{row_name} / {col_name}")
    save(grid.figure, stem)


def tsne_panels(panels: list[dict], stem: Path, perplexity: float, seed: int) -> None:
    """t-SNE of clean and adversarial test embeddings, one row per defense (as in the paper's
    v1 Fig. 1): each panel = {'defense', 'clean' [n, D], 'adversarial' [n, D], 'labels' [n]}.
    Clean and adversarial embeddings of a defense share one t-SNE fit, so the two columns are
    directly comparable; colours are test classes."""
    from sklearn.manifold import TSNE

    rows = []
    for panel in panels:
        joint = np.concatenate([panel["clean"], panel["adversarial"]])
        points = TSNE(perplexity=perplexity, random_state=seed, init="pca").fit_transform(joint)
        n = len(panel["labels"])
        for condition, block in (("clean", points[:n]), ("adversarial", points[n:])):
            rows.append(
                pd.DataFrame(
                    {
                        "x": block[:, 0],
                        "y": block[:, 1],
                        "class": panel["labels"].astype(str),
                        "condition": condition,
                        "defense": panel["defense"],
                    }
                )
            )
    frame = pd.concat(rows, ignore_index=True)
    grid = sns.relplot(
        data=frame, x="x", y="y", hue="class", row="defense", col="condition", s=12,
        height=2.6, aspect=1.0, legend=False, facet_kws={"sharex": False, "sharey": False},
    )  # fmt: skip
    grid.set(xticks=[], yticks=[], xlabel="", ylabel="")
    grid.set_titles("{row_name}: {col_name}")
    save(grid.figure, stem)
