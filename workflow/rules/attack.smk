"""Attacks and their evaluation, per trained model (robdml.jobs): one job per group of attacks
crafts each attack at its eps and evaluates every set it crafts (white-box; ensemble members
alone at the main eps); an ensemble's members job (attacks crafted on each member at every eps,
evaluated on the ensemble); a transfer source's transfer job. Each writes one metrics JSON;
adversarial sets are written only where a later job reads them; each resumes where a killed
attempt stopped.
"""

ATTACK_RETRIES = resume_retries(
    attack_job_seconds(ids["dataset"], ids["backbone"], ids["defense"], job)
    for ids in sized(EVALUATED_IDS)
    for job in ATTACK_JOBS
)

TRANSFER_RETRIES = resume_retries(
    cost_model.transfer_job_seconds(
        config, ids["dataset"], ids["backbone"], ids["defense"], ids["seed"]
    )
    for ids in sized(TRANSFER_SOURCES)
)

MEMBERS_RETRIES = resume_retries(
    cost_model.members_job_seconds(
        config, ids["dataset"], ids["backbone"], ids["defense"]
    )
    for ids in sized(MODEL_IDS)
    if ids["defense"] in MEMBERS_JOB_DEFENSES
)


rule attack:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
        script=step_script("attack"),
    output:
        metrics=f"{METRICS}/{{job}}.json",
        sets=adversarial_directory(),
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/{{job}}.log",
    benchmark:
        f"{BENCHMARKS}/{COST_BENCHMARKS['attack']}"
    wildcard_constraints:
        job=one_of(ATTACK_JOBS),
    priority: n_members
    retries: ATTACK_RETRIES
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=attack_mem_mb,
        runtime=attack_runtime,
    params:
        code=code_of("attack"),
        job=lambda w: job_spec(w.dataset, w.backbone, w.defense, w.seed, w.job),
        evaluation=as_json(evaluation_spec(config)),
        ids=model_ids,
        device=config["device"],
        fast_path=fast_path_options(config),
        # finished (attack, eps) units, kept across attempts (not an output: Snakemake would
        # delete it before a retry)
        progress=f"{METRICS}/{{job}}.progress",
    shell:
        "python {input.script:q} --job {params.job:q} --evaluation {params.evaluation:q}"
        " --ids {params.ids:q} --model {input.model:q} --data {input.data:q}"
        " --metrics {output.metrics:q} --sets {output.sets:q} --progress {params.progress:q}"
        " --device {params.device} {params.fast_path} --threads {threads} > {log:q} 2>&1"


rule attack_members:
    input:
        model=f"{MODEL}/model.pt",
        data=f"{DATA}/test.pt",
        script=step_script("attack_members"),
    output:
        f"{METRICS}/members.json",
    log:
        f"{LOGS}/attack/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}/members.log",
    benchmark:
        f"{BENCHMARKS}/{COST_BENCHMARKS['members']}"
    wildcard_constraints:
        defense=one_of(MEMBERS_JOB_DEFENSES),
    priority: n_members
    retries: MEMBERS_RETRIES
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
        code=code_of("attack_members"),
        job=lambda w: as_json(members_job_spec(config, w.defense)),
        evaluation=as_json(evaluation_spec(config)),
        ids=model_ids,
        seed=config["evaluation"]["attack_kmeans_seed"],
        device=config["device"],
        fast_path=fast_path_options(config),
        # finished (attack, eps, member) units, kept across attempts (as the attack rule's)
        progress=f"{METRICS}/members.progress",
    shell:
        "python {input.script:q} --job {params.job:q} --evaluation {params.evaluation:q}"
        " --ids {params.ids:q} --seed {params.seed} --model {input.model:q} --data {input.data:q}"
        " --metrics {output:q} --progress {params.progress:q}"
        " --device {params.device} {params.fast_path}"
        " --threads {threads} > {log:q} 2>&1"


rule transfer:
    input:
        unpack(transfer_inputs),
        script=step_script("transfer"),
    output:
        f"{METRICS}/transfer.json",
    log:
        f"{LOGS}/transfer/{{dataset}}/{{backbone}}/{{defense}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/{COST_BENCHMARKS['transfer']}"
    wildcard_constraints:
        defense=one_of(config["transfer"]["source_defenses"]),
    retries: TRANSFER_RETRIES
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPUS,
        cpus_per_gpu=cpus_per_gpu,
        mem_mb=mem_mb("evaluate"),
        runtime=transfer_runtime,
    params:
        code=code_of("transfer"),
        evaluation=as_json(evaluation_spec(config)),
        targets=lambda w: as_json(transfer_target_ids(w)),
        names=[attack for attack, _ in TRANSFER_SETS],
        sets=transfer_set_paths,
        device=config["device"],
        # finished (set, target) units, kept across attempts (not an output: Snakemake would
        # delete it before a retry)
        progress=f"{METRICS}/transfer.progress",
    shell:
        "python {input.script:q} --evaluation {params.evaluation:q}"
        " --source-defense {wildcards.defense} --source-seed {wildcards.seed}"
        " --targets {params.targets:q} --models {input.models:q} --names {params.names}"
        " --sets {params.sets:q} --metrics {output:q} --progress {params.progress:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"
