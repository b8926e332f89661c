"""Towards Adversarially Robust Deep Metric Learning (Ke, arXiv 2501.01025), reproduced.

prepare_data -> train -> attack -> evaluate -> tables, figures. config/config.yaml defines
everything and selects the paper's grid; `--configfile`s (e.g. the offline demo,
config/demo.yaml) merge over it, in order.
"""

import sys

from snakemake.utils import min_version

min_version("9.0")
# robdml's config code is read from src/, so Snakemake's own env needs no install of it
sys.path.insert(0, f"{workflow.basedir}/src")


configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/report.smk"


# Every per-model output is a target too, not only what the tables read: a plain rerun then
# rebuilds a model file or metrics JSON that a killed or forced job deleted (Snakemake does not
# rebuild a missing intermediate file while everything after it is up to date).
rule all:
    default_target: True
    input:
        MODELS,
        ALL_METRICS,
        TABLES,
        FIGURES,
        SANITY,
        TSNE,
        SUMMARY,
        TRAINING_CURVES,
        CARDS,


# Attack and transfer jobs keep their finished units until the run has succeeded: a job that
# SLURM reports failed after it finished (killed at its limit while exiting) must still find
# them on its retry (robdml.job_progress).
onsuccess:
    remove_finished_progress("results/metrics")
