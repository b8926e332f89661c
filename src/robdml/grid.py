"""The run's records and the grid of models they should fill: the metrics JSONs as one frame
(`long`), and which models the run expects, in its order, so that a table lists every one and
names the runs that are missing (never drops them silently)."""

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from robdml.worst_case import MODEL, at_eps, threat_models, worst_case

IDS = ["dataset", "backbone", "defense", "seed", "threat", "source", "attack", "eps_255"]
GROUP = ["dataset", "backbone", "defense"]


def load_results(paths: list[str | Path]) -> pd.DataFrame:
    """One row per metrics record of the jobs' JSONs (robdml.evaluation)."""
    return records_frame(
        [result for path in paths for result in json.loads(Path(path).read_text())["records"]]
    )


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per metrics record (robdml.evaluation): identifiers, metrics, config hash."""
    rows = [{**r["ids"], **r["metrics"], "config_hash": r["config_hash"]} for r in records]
    frame = pd.DataFrame(rows)
    for column in ("source_defense", "source_seed"):  # a transfer source's ids; empty elsewhere
        if column not in frame:
            frame[column] = None
    frame["source_seed"] = frame["source_seed"].astype("Int64")
    return frame.sort_values(IDS, kind="stable").reset_index(drop=True)


@dataclass
class Grid:
    """The run's selection in config order (`run`: datasets, backbones, defenses, seeds; the
    external models, each (dataset, backbone, name, seed), after the defenses of its block)
    and per model the transfer sources ({defense, seed}) whose examples it is evaluated on."""

    datasets: list[str]
    backbones: list[str]
    defenses: list[str]
    seeds: list[int]
    transfer_sources: dict[tuple, list[dict]] = field(default_factory=dict)
    external: list[tuple] = field(default_factory=list)

    @classmethod
    def from_config(cls, run: dict) -> "Grid":
        """From the workflow's selection: `run` lists (`external`: robdml.jobs.external_model_ids;
        `transfer_sources`: robdml.jobs.expected_transfer_sources)."""
        grid = cls(
            list(run["datasets"]), list(run["backbones"]), list(run["defenses"]),
            [int(seed) for seed in run["seeds"]],
            external=[tuple(ids[key] for key in MODEL) for ids in run.get("external", [])],
        )  # fmt: skip
        for entry in run.get("transfer_sources", []):
            grid.transfer_sources[tuple(entry["model"][key] for key in MODEL)] = entry["sources"]
        return grid

    @classmethod
    def from_results(cls, long: pd.DataFrame) -> "Grid":
        """The models the results contain (sorted): without a config, nothing counts as
        missing but suite attacks of a model that has others."""
        models = long[long["threat"].isin(["clean", "whitebox"])]
        return cls(*(sorted(models[key].unique().tolist()) for key in MODEL))

    def models(self) -> list[tuple]:
        trained = itertools.product(self.datasets, self.backbones, self.defenses, self.seeds)
        return list(trained) + self.external

    def groups(self) -> list[tuple]:
        """(dataset, backbone, defense) of every expected model, without repeats."""
        return list(dict.fromkeys(model[:3] for model in self.models()))

    def defense_order(self) -> list[str]:
        """Defenses, then external models, in config order."""
        return self.defenses + [model[2] for model in self.external]


def order_rows(frame: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Rows in the grid's order of datasets, backbones and defenses (names outside the grid
    after, sorted); stable otherwise."""
    orders = {
        "dataset": grid.datasets, "backbone": grid.backbones, "defense": grid.defense_order()
    }  # fmt: skip
    keys = []
    for column, order in orders.items():
        if column in frame:
            rank = {name: i for i, name in enumerate(order)}
            keys.append(column)
            frame = frame.assign(**{f"_{column}_rank": frame[column].map(rank)})
    ranks = [f"_{column}_rank" for column in keys]
    frame = frame.sort_values(
        [part for column in keys for part in (f"_{column}_rank", column)], kind="stable"
    )
    return frame.drop(columns=ranks).reset_index(drop=True)


def table_index(long: pd.DataFrame, grid: Grid) -> pd.MultiIndex:
    """(dataset, backbone, defense) of every expected group and of every group with records,
    in the grid's order."""
    expected = pd.DataFrame(grid.groups(), columns=GROUP)
    present = long[GROUP].drop_duplicates() if len(long) else expected.iloc[:0]
    groups = pd.concat([expected, present]).drop_duplicates()
    return pd.MultiIndex.from_frame(order_rows(groups, grid))


def model_name(model: tuple) -> str:
    dataset, backbone, defense, seed = model
    return f"{dataset}/{backbone}/{defense} seed {seed}"


def missing_runs(long: pd.DataFrame, grid: Grid, eps_255: float, suites: dict) -> list[str]:
    """One line per expected model that lacks records: no records at all, no clean record,
    or suite attacks missing at `eps_255` (robdml.worst_case's `n_attacks` per threat model,
    with the names of the missing attacks)."""
    clean = set(map(tuple, long.loc[long["threat"] == "clean", MODEL].to_numpy().tolist()))
    whitebox = long[(long["threat"] == "whitebox") & (long["eps_255"] == eps_255)]
    found = {
        name: at_eps(worst_case(long, attacks), eps_255).set_index(MODEL)["n_attacks"]
        for name, attacks in threat_models(suites).items()
    }
    suite = list(dict.fromkeys(sum(threat_models(suites).values(), [])))
    notes = []
    for model in grid.models():
        counts = {name: int(worst.get(model, 0)) for name, worst in found.items()}
        complete = all(counts[name] == len(a) for name, a in threat_models(suites).items())
        if model in clean and complete:
            continue
        if model not in clean and not any(counts.values()):
            notes.append(f"{model_name(model)}: no records (its jobs did not run or failed)")
            continue
        parts = [] if model in clean else ["no clean record"]
        if not complete:
            rows = whitebox[(whitebox[MODEL] == pd.Series(model, index=MODEL)).all(axis=1)]
            absent = [attack for attack in suite if attack not in set(rows["attack"])]
            counted = ", ".join(
                f"{name} suite {counts[name]} of {len(attacks)} attacks"
                for name, attacks in threat_models(suites).items()
            )
            parts.append(f"no {', '.join(absent)} at eps {eps_255:g}/255 ({counted})")
        notes.append(f"{model_name(model)}: {'; '.join(parts)}")
    return notes
