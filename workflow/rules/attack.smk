"""Attacks and their evaluation, per trained model (robdml.jobs): one job per group of attacks
crafts each attack at its eps and evaluates every set it crafts (white-box; ensemble members
alone at the main eps); an ensemble's members job; a transfer source's transfer job. Each
writes one metrics JSON; adversarial sets are written only where a later job reads them.
"""


rule attack:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
        script=f"{SRC}/attack.py",
    output:
        metrics=f"{METRICS}/{{job}}.json",
        sets=adversarial_directory(),
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{job}}.log",
    benchmark:
        f"{BENCHMARKS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{job}}.tsv"
    wildcard_constraints:
        job=one_of(ATTACK_JOBS),
    priority: n_members
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=attack_mem_mb,
        runtime=attack_runtime,
    params:
        job=lambda w: job_spec(w.dataset, w.backbone, w.defense, w.seed, w.job),
        evaluation=as_json(evaluation_spec(config)),
        ids=model_ids,
        device=device_option(config),
    shell:
        "python {input.script} --job {params.job:q} --evaluation {params.evaluation:q}"
        " --ids {params.ids:q} --model {input.model} --data {input.data}"
        " --metrics {output.metrics} --sets {output.sets}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule attack_members:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
        script=f"{SRC}/attack_members.py",
    output:
        f"{METRICS}/members.json",
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/members.log",
    benchmark:
        f"{BENCHMARKS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/members.tsv"
    wildcard_constraints:
        defense=one_of(MEMBERS_JOB_DEFENSES),
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=lambda w, attempt: cost_model.mem_mb(
            config, "attack", w.dataset, 1, attempt
        ),
        runtime=members_runtime,
    params:
        job=lambda w: as_json(members_job_spec(config, w.defense)),
        evaluation=as_json(evaluation_spec(config)),
        ids=model_ids,
        seed=config["evaluation"]["attack_kmeans_seed"],
        device=device_option(config),
    shell:
        "python {input.script} --job {params.job:q} --evaluation {params.evaluation:q}"
        " --ids {params.ids:q} --seed {params.seed} --model {input.model} --data {input.data}"
        " --metrics {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule transfer:
    input:
        unpack(transfer_inputs),
        script=f"{SRC}/transfer.py",
    output:
        f"{METRICS}/transfer.json",
    log:
        f"{LOGS}/transfer/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/transfer/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.tsv"
    wildcard_constraints:
        defense=one_of(config["transfer"]["source_defenses"]),
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=transfer_runtime,
    params:
        evaluation=as_json(evaluation_spec(config)),
        source="{defense}/seed{seed}",
        targets=lambda w: as_json(transfer_target_ids(w)),
        names=[attack for attack, _ in TRANSFER_SETS],
        sets=transfer_set_paths,
        device=config["device"],
    shell:
        "python {input.script} --evaluation {params.evaluation:q} --source {params.source}"
        " --targets {params.targets:q} --models {input.models} --names {params.names}"
        " --sets {params.sets} --metrics {output} --device {params.device}"
        " --threads {threads} > {log} 2>&1"
