"""Training: one job per (dataset, backbone, defense, seed); ensembles are one job and one file."""


rule train:
    input:
        f"{DATA}/train.pt",
    output:
        f"{MODEL}/model.pt",
    params:
        spec=lambda w: as_json(
            train_spec(config, w.dataset, w.backbone, w.defense, int(w.seed))
        ),
        checkpoint=f"{MODEL}/checkpoint.pt",
        device=config["device"],
    log:
        f"{LOGS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.tsv"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        mem_mb=config["resources"]["mem_mb"],
        runtime=lambda w: RUNTIME["train"] * n_members(w),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{PYTHON} {SRC}/train.py --spec {params.spec:q} --data {input}"
        " --model {output} --checkpoint {params.checkpoint}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
