"""Datasets: raw files -> verified and extracted -> prepared, class-disjoint train/test splits.

Raw files live in {data_root}/{dataset}/raw/: downloaded where the config gives a url, placed
by hand otherwise (layout: robdml.data.raw_files). Generated datasets (glyphs) have none.

Only downloads run where Snakemake runs (`localrules`): `snakemake fetch` on a login node
with internet gets every raw file and ImageNet weights file the selected runs need; extraction
and preparation are ordinary jobs with their own resources (on a cluster: compute nodes).
"""


localrules:
    fetch,
    download,


rule fetch:
    input:
        [
            f"{DATA}/raw/{name}".format(dataset=dataset)
            for dataset, entry in config["datasets"].items()
            for name in entry.get("raw_files", {})
        ],
        weights_files(config["backbones"]),


# No script input and a protected output: a code change must not delete and re-fetch a
# gigabyte archive, nor a file placed by hand (Snakemake removes outputs before rerunning).
rule download:
    output:
        protected(f"{DATA}/raw/{{file}}"),
    log:
        f"{LOGS}/download/{{dataset}}/{{file}}.log",
    benchmark:
        f"{BENCHMARKS}/download/{{dataset}}/{{file}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        script=f"{SRC}/download_data.py",
        source=lambda w: config["datasets"][w.dataset]["source"],
        entry=lambda w: as_json(config["datasets"][w.dataset]["raw_files"][w.file]),
    shell:
        "python {params.script:q} --dataset {wildcards.dataset} --source {params.source}"
        " --file {wildcards.file:q} --entry {params.entry:q} --out {output:q} --log {log:q}"


# Extraction does not depend on the script's code either: rerunning it would rebuild
# every prepared split and model downstream.
rule extract:
    input:
        lambda w: expand(
            f"{DATA}/raw/{{name}}",
            dataset=w.dataset,
            name=list(config["datasets"][w.dataset]["raw_files"]),
        ),
    output:
        directory(f"{DATA}/extracted"),
    log:
        f"{LOGS}/extract/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/extract/{{dataset}}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        script=f"{SRC}/extract_data.py",
        source=lambda w: config["datasets"][w.dataset]["source"],
        md5=lambda w: as_json(
            {
                name: entry["md5"]
                for name, entry in config["datasets"][w.dataset]["raw_files"].items()
            }
        ),
    shell:
        "python {params.script:q} --source {params.source} --md5 {params.md5:q}"
        " --out {output:q} --log {log:q} {input:q}"


rule prepare_data:
    input:
        script=step_script("prepare_data"),
        # metadata files in raw/ are read too: extract depends on them
        extracted=lambda w: (
            expand(f"{DATA}/extracted", dataset=w.dataset)
            if "raw_files" in config["datasets"][w.dataset]
            else []
        ),
    output:
        train=f"{DATA}/train.pt",
        test=f"{DATA}/test.pt",
    log:
        f"{LOGS}/prepare_data/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data/{{dataset}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("prepare"),
        runtime=fixed_runtime("prepare"),
    params:
        code=code_of("prepare_data"),
        spec=lambda w: as_json(data_spec(config, w.dataset)),
    shell:
        "python {input.script:q} --spec {params.spec:q}"
        " --train {output.train:q} --test {output.test:q} > {log:q} 2>&1"
