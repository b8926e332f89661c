"""Training: one job per (dataset, backbone, defense, seed); ensembles are one job and one file.
A backbone with ImageNet weights reads them from their file (workflow/rules/weights.smk).
"""


rule train:
    input:
        data=f"{DATA}/train.pt",
        script=f"{SRC}/train.py",
        weights=lambda w: weights_files([w.backbone]),
    output:
        f"{MODEL}/model.pt",
    log:
        f"{LOGS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.tsv"
    wildcard_constraints:
        defense=one_of(config["defenses"]),  # external models are imported, not trained
    priority: n_members
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("train"),
        runtime=train_runtime,
    params:
        spec=lambda w: as_json(
            train_spec(config, w.dataset, w.backbone, w.defense, int(w.seed))
        ),
        checkpoint=f"{MODEL}/checkpoint.pt",
        device=device_option(config),
        # derived from the input, so not a params rerun trigger; empty without weights
        weights=lambda w, input: f" --weights {input.weights}" if input.weights else "",
    shell:
        "python {input.script} --spec {params.spec:q} --data {input.data}"
        " --model {output} --checkpoint {params.checkpoint}"
        " --device {params.device} --threads {threads}{params.weights} > {log} 2>&1"
