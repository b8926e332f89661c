"""What an attack's resolved params declare about it, read by the config checks, the cost
model and the attack runner alike: whether it is label-aware (reads the true test labels) and
whether it re-fits. Torch-free, so that the workflow's config validation runs in a plain
Snakemake environment (`--sdm conda`). `ThreatModel` names the two attackers everywhere
(config checks, attack jobs, worst cases, tables, cards, the API)."""

from enum import StrEnum


class ThreatModel(StrEnum):
    """The evaluation's two attackers, as tables print them (RobustBench's `ThreatModel` is
    the model): label-free ones know the model and the clean clustering, label-aware ones
    also the true test labels."""

    LABEL_FREE = "label-free"
    LABEL_AWARE = "label-aware"

    @property
    def suite(self) -> str:
        """Its key in the config's `attack_suites` (and its attack job's name)."""
        return self.value.replace("-", "_")


def reads_true_labels(params: dict) -> bool:
    """An attack whose `labels` are the true classes (`oracle` always, by its schema entry;
    `mi` when configured so)."""
    return params.get("labels") == "true_classes"


def refits(params: dict) -> bool:
    """A re-fitting attack: its schema entry has `refit_every` (rounds of that many steps,
    each followed by the attacker's k-means of the adversarial set)."""
    return "refit_every" in params


def radius(eps_255: float) -> float:
    """The L-inf radius, in [0, 1] pixel units, of a budget of `eps_255`/255. The one unit
    conversion: configs, paths, attack results and metrics say `eps_255`; the PGD core
    (robdml.attacks.pgd) and the defenses' inner maximisations take radii."""
    return eps_255 / 255
