"""Datasets: raw source -> prepared, class-disjoint train/test split files."""


localrules:
    prepare_data,


rule prepare_data:
    output:
        train=f"{DATA}/train.pt",
        test=f"{DATA}/test.pt",
    params:
        spec=lambda w: as_json(config["datasets"][w.dataset]),
    log:
        f"{LOGS}/prepare_data/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["prepare"],
    conda:
        "../../envs/torch.yaml"
    shell:
        "{PYTHON} {SRC}/prepare_data.py --spec {params.spec:q}"
        " --train {output.train} --test {output.test} > {log} 2>&1"
