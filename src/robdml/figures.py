"""Figures (seaborn, matplotlib) from the long results table and the cost table; each saved as
PNG and PDF.

Every defense keeps one colour, marker and line dash in every figure (defense_styles, from the
run's order of defenses): colours from viridis, whose lightness rises monotonically, so the
figures stay readable in grayscale, where the markers and dashes tell the defenses apart.
Metric axes are set from the data with a margin (NMI of a few hundred classes is far above 0:
an axis from 0 would hide the differences); bars (cost) start at 0.
"""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from robdml.io import atomic_write  # noqa: E402
from robdml.job_costs import JOB_KINDS  # noqa: E402
from robdml.tables import seed_stats  # noqa: E402
from robdml.threat_model import ThreatModel  # noqa: E402
from robdml.worst_case import suite_worst_cases, threat_models  # noqa: E402

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "*", "h"]
DASHES = ["", (4, 1.5), (1, 1), (3, 1, 1, 1), (6, 2)]  # 5 and 12 coprime: 60 combinations
HATCHES = {"train": "", "attack": "///", "members": "xx", "transfer": ".."}
LABELS = {"nmi": "NMI", "ari": "ARI", "recall@1": "Recall@1", "f1": "F1", "ami": "AMI"}
CHANCE = {"color": "0.4", "linestyle": ":", "linewidth": 1.2}


def save(figure, stem: Path) -> None:
    """Write `stem`.png and `stem`.pdf atomically, cropped to what is drawn (labels and
    legends outside the axes included), and close the figure (the plotting functions return
    it, closed, for its axes to be inspected)."""
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        atomic_write(
            path,
            lambda tmp, s=suffix: figure.savefig(tmp, format=s[1:], dpi=150, bbox_inches="tight"),
        )
    plt.close(figure)


def defense_order(defenses: list[str] | None, present) -> list[str]:
    """The run's order, then any other defense present (sorted)."""
    order = list(defenses or [])
    return order + sorted(set(present) - set(order))


def defense_styles(defenses: list[str]) -> dict[str, dict]:
    """Defense -> {color, marker, dashes, linestyle}, by its position in `defenses`."""
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, max(len(defenses), 2)))
    styles = {}
    for i, defense in enumerate(defenses):
        dashes = DASHES[i % len(DASHES)]
        styles[defense] = {
            "color": tuple(colours[i]),
            "marker": MARKERS[i % len(MARKERS)],
            "dashes": dashes,
            "linestyle": (0, dashes) if dashes else "-",
        }
    return styles


def lightness(colour) -> float:
    """Gray level (0 black, 1 white) of a colour, as a grayscale print shows it."""
    red, green, blue = to_rgb(colour)
    return 0.299 * red + 0.587 * green + 0.114 * blue


def defense_handles(styles: dict[str, dict], shown) -> list[Line2D]:
    return [
        Line2D([], [], color=style["color"], marker=style["marker"], linestyle=style["linestyle"],
               label=defense)
        for defense, style in styles.items()
        if defense in set(shown)
    ]  # fmt: skip


def limits(low: float, high: float, margin: float = 0.08) -> tuple[float, float]:
    """[low, high] widened by `margin` of its span (a little when the span is 0; (0, 1)
    without data)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return 0.0, 1.0
    span = high - low if high > low else max(abs(high), 1.0) * 0.05
    return low - margin * span, high + margin * span


def show_chance(axis, chance: float, metric: str, low: float, high: float) -> float:
    """Draw the chance level as a dotted line when it lies at most half the data's span below
    the data (returns the lower limit that keeps it in view); further below, a line would
    squeeze the data, so its value is written at the bottom of the axis instead."""
    if pd.isna(chance) or not np.isfinite(low):
        return low
    if chance >= low - max(high - low, 1e-9) / 2:
        axis.axhline(chance, **CHANCE)
        return min(low, chance)
    axis.annotate(
        f"chance {metric} {chance:.3f} (below)", xy=(0.98, 0.02), xycoords="axes fraction",
        ha="right", va="bottom", fontsize=8, color="0.3",
    )  # fmt: skip
    return low


def settings(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, backbone) panels in order of appearance."""
    return list(dict.fromkeys(zip(frame["dataset"], frame["backbone"], strict=True)))


def panels(n_rows: int, n_cols: int, width: float = 4.4, height: float = 3.4):
    figure, axes = plt.subplots(
        n_rows, n_cols, figsize=(width * n_cols, height * n_rows), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    return figure, axes


def nmi_by_defense(
    long: pd.DataFrame, eps_255: float, suites: dict, stem: Path,
    defenses: list[str] | None = None,
) -> plt.Figure:  # fmt: skip
    """Per dataset/backbone panel, one line per defense from its clean NMI to the worst case
    of each threat model at `eps_255` (a slope chart: the drop is the slope); error bars: std
    over seeds (one seed: over k-means seeds). Dotted: chance NMI (show_chance)."""
    clean = long[long["threat"] == "clean"]
    worst = suite_worst_cases(long, suites)
    worst = worst[worst["eps_255"] == eps_255]
    conditions = ["clean"] + list(threat_models(suites))
    frames = [clean] + [worst[worst["threat_model"] == name] for name in conditions[1:]]
    order = defense_order(defenses, clean["defense"])
    styles = defense_styles(order)
    cases = settings(clean)
    figure, axes = panels(1, len(cases), width=5.0)
    width = 0.35
    for axis, (dataset, backbone) in zip(axes[0], cases, strict=True):
        low, high = [], []
        shown = [d for d in order if d in set(clean["defense"])]
        for i, defense in enumerate(shown):
            means, stds = [], []
            for frame in frames:
                rows = frame[
                    (frame["dataset"] == dataset) & (frame["backbone"] == backbone)
                    & (frame["defense"] == defense)
                ]  # fmt: skip
                stats = seed_stats(rows, "nmi", ["defense"]) if len(rows) else None
                means.append(stats["mean"].iloc[0] if stats is not None else np.nan)
                stds.append(stats["std"].iloc[0] if stats is not None else np.nan)
            means, stds = np.array(means, float), np.nan_to_num(np.array(stds, float))
            offset = (i - (len(shown) - 1) / 2) * width / max(len(shown), 1)
            style = styles[defense]
            axis.errorbar(
                np.arange(len(conditions)) + offset, means, yerr=stds, color=style["color"],
                marker=style["marker"], linestyle=style["linestyle"], capsize=2, markersize=5,
            )  # fmt: skip
            finite = np.isfinite(means)
            if finite.any():
                low.append((means - stds)[finite].min())
                high.append((means + stds)[finite].max())
        chance = long.loc[long["dataset"] == dataset, "nmi_chance"].mean()
        low, high = min(low, default=np.nan), max(high, default=np.nan)
        axis.set_ylim(*limits(show_chance(axis, chance, "NMI", low, high), high))
        axis.set_xticks(range(len(conditions)))
        axis.set_xticklabels(
            ["clean"] + [f"{name}\nworst, {eps_255:g}/255" for name in conditions[1:]]
        )
        axis.set_title(f"{dataset} / {backbone}")
        axis.set_ylabel("NMI (k-means, test classes)")
    handles = defense_handles(styles, clean["defense"])
    handles.append(Line2D([], [], label="chance NMI", **CHANCE))
    figure.legend(handles=handles, loc="outside right center", title="defense", frameon=False)
    save(figure, stem)
    return figure


def vs_eps_curves(long: pd.DataFrame, metric: str, suites: dict) -> pd.DataFrame:
    """Per model, threat model and eps: the suite's worst case of `metric`; eps 0 is clean."""
    clean = long[long["threat"] == "clean"].copy()
    clean["eps_255"] = 0.0
    ids = ["dataset", "backbone", "defense", "seed", "eps_255"]
    curves = [clean[ids + [metric]].assign(threat_model=name) for name in threat_models(suites)]
    curves.append(suite_worst_cases(long, suites)[ids + [metric, "threat_model"]])
    return pd.concat(curves, ignore_index=True)


def metric_vs_eps(
    long: pd.DataFrame, metric: str, suites: dict, stem: Path,
    defenses: list[str] | None = None,
) -> plt.Figure:  # fmt: skip
    """Line plot of vs_eps_curves: one row of panels per threat model, one line per defense
    (its colour, marker and dash); error bands: std over seeds. Dotted: chance level (NMI:
    the records' chance NMI; ARI: 0; show_chance)."""
    curve = vs_eps_curves(long, metric, suites)
    curve["setting"] = curve["dataset"] + " / " + curve["backbone"]
    order = defense_order(defenses, curve["defense"])
    order = [d for d in order if d in set(curve["defense"])]
    styles = defense_styles(defense_order(defenses, curve["defense"]))
    grid = sns.relplot(
        data=curve, kind="line", x="eps_255", y=metric, hue="defense", style="defense",
        hue_order=order, style_order=order, palette={d: styles[d]["color"] for d in order},
        markers={d: styles[d]["marker"] for d in order},
        dashes={d: styles[d]["dashes"] for d in order}, col="setting", row="threat_model",
        errorbar="sd", height=3.4, aspect=1.3, facet_kws={"sharey": False}, legend=False,
    )  # fmt: skip
    eps = sorted(curve["eps_255"].unique())
    for (row, col, _), data in grid.facet_data():
        axis = grid.axes[row, col]
        if data.empty:
            continue
        stats = data.groupby(["defense", "eps_255"])[metric].agg(["mean", "std"]).fillna(0)
        low, high = (stats["mean"] - stats["std"]).min(), (stats["mean"] + stats["std"]).max()
        if metric == "nmi":
            chance = long.loc[long["dataset"] == data["dataset"].iloc[0], "nmi_chance"].mean()
            low = show_chance(axis, chance, "NMI", low, high)
        elif metric == "ari":  # ARI is adjusted for chance: 0
            low = show_chance(axis, 0.0, "ARI", low, high)
        axis.set_ylim(*limits(low, high))
        axis.set_xticks(eps)
    label = LABELS.get(metric, metric)
    grid.set_axis_labels("eps (/255); 0: clean", f"{label}, worst case over the suite")
    grid.set_titles("{row_name} / {col_name}")
    handles = defense_handles(styles, order)
    if metric in ("nmi", "ari"):
        handles.append(Line2D([], [], label=f"chance {LABELS[metric]}", **CHANCE))
    grid.figure.legend(
        handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title="defense",
        frameon=False,
    )  # fmt: skip
    save(grid.figure, stem)
    return grid.figure


def tradeoff(
    long: pd.DataFrame, eps_255: float, suites: dict, stem: Path,
    defenses: list[str] | None = None,
) -> plt.Figure:  # fmt: skip
    """Clean NMI (x) against the label-free worst-case NMI at `eps_255` (y), one point per
    defense and dataset/backbone panel; error bars: std over seeds (one seed: over k-means
    seeds). Dotted: chance NMI; dashed grey: robust = clean."""
    clean = long[long["threat"] == "clean"]
    worst = suite_worst_cases(long, suites)
    worst = worst[(worst["eps_255"] == eps_255) & (worst["threat_model"] == ThreatModel.LABEL_FREE)]
    x, y = seed_stats(clean, "nmi"), seed_stats(worst, "nmi")
    points = x.merge(y, left_index=True, right_index=True, how="outer", suffixes=("_x", "_y"))
    points = points.reset_index()
    order = defense_order(defenses, points["defense"])
    styles = defense_styles(order)
    cases = settings(points)
    figure, axes = panels(1, len(cases), width=4.2, height=3.8)
    visible = {"chance": False, "diagonal": False}
    for axis, (dataset, backbone) in zip(axes[0], cases, strict=True):
        panel = points[(points["dataset"] == dataset) & (points["backbone"] == backbone)]
        for defense in [d for d in order if d in set(panel["defense"])]:
            row = panel[panel["defense"] == defense].iloc[0]
            style = styles[defense]
            axis.errorbar(
                row["mean_x"], row["mean_y"], xerr=np.nan_to_num(row["std_x"]),
                yerr=np.nan_to_num(row["std_y"]), color=style["color"], marker=style["marker"],
                markersize=7, linestyle="none", capsize=2,
            )  # fmt: skip
        spread = panel.fillna({"std_x": 0, "std_y": 0})
        xlim = limits((spread["mean_x"] - spread["std_x"]).min(),
                      (spread["mean_x"] + spread["std_x"]).max(), 0.12)  # fmt: skip
        ylim = limits((spread["mean_y"] - spread["std_y"]).min(),
                      (spread["mean_y"] + spread["std_y"]).max(), 0.12)  # fmt: skip
        chance = long.loc[long["dataset"] == dataset, "nmi_chance"].mean()
        if pd.notna(chance):
            axis.axhline(chance, **CHANCE)
        axis.axline((0, 0), slope=1, color="0.6", linestyle="--", linewidth=1)
        axis.set_xlim(*xlim)
        axis.set_ylim(*ylim)
        visible["chance"] |= bool(pd.notna(chance) and ylim[0] <= chance <= ylim[1])
        visible["diagonal"] |= bool(max(xlim[0], ylim[0]) <= min(xlim[1], ylim[1]))
        axis.set_title(f"{dataset} / {backbone}")
        axis.set_xlabel("clean NMI")
        axis.set_ylabel(f"{ThreatModel.LABEL_FREE} worst-case NMI, eps {eps_255:g}/255")
    handles = defense_handles(styles, points["defense"])
    handles = [
        Line2D([], [], color=h.get_color(), marker=h.get_marker(), linestyle="none",
               label=h.get_label())
        for h in handles
    ]  # fmt: skip
    if visible["chance"]:
        handles.append(Line2D([], [], label="chance NMI", **CHANCE))
    if visible["diagonal"]:
        handles.append(
            Line2D([], [], color="0.6", linestyle="--", linewidth=1, label="robust = clean")
        )
    figure.legend(handles=handles, loc="outside right center", title="defense", frameon=False)
    save(figure, stem)
    return figure


def cost_unit(seconds: float) -> tuple[str, float]:
    """(unit, seconds per unit) as the cost table prints them: hours from 2 h, minutes from
    2 min."""
    if seconds >= 7200:
        return "h", 3600.0
    return ("min", 60.0) if seconds >= 120 else ("s", 1.0)


def cost_bars(cost: pd.DataFrame, stem: Path, defenses: list[str] | None = None) -> plt.Figure:
    """Horizontal stacked bars per defense (its colour): wall time of its train, attack,
    members and transfer jobs summed over seeds (hatches), from the cost table (cost.csv);
    one panel per dataset/backbone."""
    columns = [f"{kind} (s)" for kind in JOB_KINDS]
    unit, scale = cost_unit(cost[columns].sum(axis=1).max())
    order = defense_order(defenses, cost["defense"])
    styles = defense_styles(order)
    cases = settings(cost)
    height = 0.8 + 0.35 * len(set(cost["defense"]))
    figure, axes = panels(1, len(cases), width=4.4, height=height)
    for axis, (dataset, backbone) in zip(axes[0], cases, strict=True):
        panel = cost[(cost["dataset"] == dataset) & (cost["backbone"] == backbone)]
        shown = [d for d in order if d in set(panel["defense"])]
        panel = panel.set_index("defense").loc[shown]
        left = np.zeros(len(shown))
        for kind, column in zip(JOB_KINDS, columns, strict=True):
            values = panel[column].fillna(0).to_numpy() / scale
            bars = axis.barh(
                range(len(shown)), values, left=left, hatch=HATCHES[kind], edgecolor="black",
                linewidth=0.6, color=[styles[d]["color"] for d in shown],
            )  # fmt: skip
            for bar, defense in zip(bars, shown, strict=True):  # hatches visible on dark bars
                bar.set_hatchcolor(
                    "white" if lightness(styles[defense]["color"]) < 0.4 else "black"
                )
            left += values
        for position, total in enumerate(panel[columns].sum(axis=1, min_count=1)):
            if pd.isna(total):
                axis.text(0, position, " no benchmark", va="center", fontsize=8, color="0.3")
        axis.set_yticks(range(len(shown)))
        axis.set_yticklabels(shown)
        axis.invert_yaxis()
        axis.set_xlim(0, max(left.max(), 1e-9) * 1.05)
        axis.set_xlabel(f"wall time summed over seeds ({unit})")
        axis.set_title(f"{dataset} / {backbone}")
    handles = [
        Patch(facecolor="white", edgecolor="black", hatch=HATCHES[kind], label=kind)
        for kind in JOB_KINDS
        if cost[f"{kind} (s)"].fillna(0).sum() > 0
    ]
    figure.legend(handles=handles, loc="outside right center", title="jobs", frameon=False)
    save(figure, stem)
    return figure


def training_curves(
    history: pd.DataFrame, stem: Path, defenses: list[str] | None = None
) -> plt.Figure:
    """Training loss per epoch (`history`: dataset, backbone, defense, seed, epoch, loss), one
    panel per dataset/backbone, one line per defense (mean over seeds, band = std), in the
    defenses' figure styles. Losses of different defenses are different objectives (PGD-AT's
    is on adversarial batches, TRADES' adds its divergence): read each curve's shape (has it
    converged?), not one curve against another."""
    order = defense_order(defenses, history["defense"].unique())
    styles = defense_styles(order)
    shown = settings(history)
    figure, axes = panels(1, len(shown))
    for axis, (dataset, backbone) in zip(axes[0], shown, strict=True):
        panel = history[(history["dataset"] == dataset) & (history["backbone"] == backbone)]
        for defense in order:
            curve = panel[panel["defense"] == defense].groupby("epoch")["loss"].agg(["mean", "std"])
            if curve.empty:
                continue
            style = styles[defense]
            axis.plot(curve.index, curve["mean"], color=style["color"], marker=style["marker"],
                      linestyle=style["linestyle"], markersize=4)  # fmt: skip
            if curve["std"].notna().any():
                axis.fill_between(curve.index, curve["mean"] - curve["std"],
                                  curve["mean"] + curve["std"], color=style["color"],
                                  alpha=0.15)  # fmt: skip
        axis.set_title(f"{dataset} / {backbone}")
        axis.set_xlabel("epoch")
        axis.set_ylabel("training loss (the defense's own)")
    figure.legend(handles=defense_handles(styles, history["defense"].unique()),
                  loc="outside right upper")  # fmt: skip
    save(figure, stem)
    return figure


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
