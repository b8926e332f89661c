"""Training: one job per (dataset, backbone, defense, seed); ensembles are one job and one file.
A backbone with ImageNet weights reads them from their file (workflow/rules/weights.smk).
"""

TRAIN_RETRIES = resume_retries(
    cost_model.train_seconds(config, ids["dataset"], ids["backbone"], ids["defense"])
    for ids in sized(MODEL_IDS)
)


rule train:
    input:
        data=f"{DATA}/train.pt",
        script=step_script("train"),
        weights=lambda w: weights_files([w.backbone]),
    output:
        f"{MODEL}/model.pt",
    log:
        f"{LOGS}/train/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/{COST_BENCHMARKS['train']}"
    wildcard_constraints:
        defense=one_of(config["defenses"]),  # external models are imported, not trained
    priority: n_members
    retries: TRAIN_RETRIES
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("train"),
        runtime=train_runtime,
    params:
        code=code_of("train"),
        spec=lambda w: as_json(
            train_spec(config, w.dataset, w.backbone, w.defense, int(w.seed))
        ),
        checkpoint=f"{MODEL}/checkpoint.pt",
        device=config["device"],
        fast_path=fast_path_options(config, crafting=False),
        # derived from the input, so not a params rerun trigger; empty without weights
        weights=lambda w, input: (
            f" --weights {shlex.quote(str(input.weights))}" if input.weights else ""
        ),
    shell:
        "python {input.script:q} --spec {params.spec:q} --data {input.data:q}"
        " --model {output:q} --checkpoint {params.checkpoint:q}"
        " --device {params.device} {params.fast_path} --threads {threads}{params.weights} > {log:q} 2>&1"
