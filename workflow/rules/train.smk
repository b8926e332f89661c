"""Training: one job per (dataset, backbone, defense, seed); ensembles are one job and one file."""


rule train:
    input:
        data=f"{DATA}/train.pt",
        script=f"{SRC}/train.py",
    output:
        f"{MODEL}/model.pt",
    log:
        f"{LOGS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.tsv"
    priority: n_members
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=config["resources"]["mem_mb"],
        runtime=lambda w: RUNTIME["train"] * n_members(w),
    params:
        spec=lambda w: as_json(
            train_spec(config, w.dataset, w.backbone, w.defense, int(w.seed))
        ),
        checkpoint=f"{MODEL}/checkpoint.pt",
        device=config["device"],
    shell:
        "python {input.script} --spec {params.spec:q} --data {input.data}"
        " --model {output} --checkpoint {params.checkpoint}"
        " --device {params.device} --threads {threads} > {log} 2>&1"
