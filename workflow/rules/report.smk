"""Tables (CSV, Markdown, LaTeX) and figures (PNG, PDF) from every metrics JSON."""


rule tables:
    input:
        metrics=ALL_METRICS,
        script=f"{SRC}/tables.py",
    output:
        inputs="results/tables/inputs.txt",
        long="results/tables/long.csv",
        csv=report(
            "results/tables/main.csv",
            caption="../report/main_table.rst",
            category="Tables",
        ),
        md="results/tables/main.md",
        tex="results/tables/main.tex",
        paired_csv="results/tables/paired.csv",
        paired_md="results/tables/paired.md",
        members_csv="results/tables/members.csv",
        members_md="results/tables/members.md",
        attacks_csv="results/tables/attacks.csv",
        attacks_md="results/tables/attacks.md",
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{BENCHMARKS}/tables.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        main_eps=config["report"]["main_eps_255"],
        baselines=config["report"]["paired_baselines"],
        suites=as_json(config["attack_suites"]),
    shell:
        # printf is a shell builtin: no argument-length limit for thousands of inputs
        "printf '%s\\n' {input.metrics} > {output.inputs} && "
        "python {input.script} --inputs {output.inputs} --main-eps {params.main_eps}"
        " --long {output.long} --csv {output.csv} --md {output.md} --tex {output.tex}"
        " --baselines {params.baselines} --paired-csv {output.paired_csv}"
        " --paired-md {output.paired_md} --members-csv {output.members_csv}"
        " --members-md {output.members_md} --suites {params.suites:q}"
        " --attacks-csv {output.attacks_csv} --attacks-md {output.attacks_md}"
        " > {log} 2>&1"


rule figures:
    input:
        long="results/tables/long.csv",
        script=f"{SRC}/figures.py",
    output:
        report(
            expand("results/figures/{name}.png", name=FIGURE_NAMES),
            caption="../report/figures.rst",
            category="Figures",
        ),
        expand("results/figures/{name}.pdf", name=FIGURE_NAMES),
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{BENCHMARKS}/figures.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        main_eps=config["report"]["main_eps_255"],
        suites=as_json(config["attack_suites"]),
    shell:
        "python {input.script} --long {input.long} --main-eps {params.main_eps}"
        " --suites {params.suites:q} --out-dir results/figures > {log} 2>&1"


rule sanity:
    input:
        long="results/tables/long.csv",
        script=f"{SRC}/sanity.py",
    output:
        csv="results/sanity/sanity.csv",
        md=report(
            "results/sanity/sanity.md",
            caption="../report/sanity.rst",
            category="Sanity",
        ),
    log:
        f"{LOGS}/sanity.log",
    benchmark:
        f"{BENCHMARKS}/sanity.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("small"),
        runtime=fixed_runtime("report"),
    params:
        spec=as_json(config["sanity"]),
        suites=as_json(config["attack_suites"]),
        main_eps=config["report"]["main_eps_255"],
    shell:
        "python {input.script} --long {input.long} --spec {params.spec:q}"
        " --suites {params.suites:q} --main-eps {params.main_eps} --csv {output.csv} --md {output.md} > {log} 2>&1"


rule tsne:
    input:
        unpack(tsne_inputs),
        script=f"{SRC}/tsne.py",
    output:
        report(
            "results/figures/tsne_{dataset}_{backbone}.png",
            caption="../report/tsne.rst",
            category="Figures",
        ),
        "results/figures/tsne_{dataset}_{backbone}.pdf",
    log:
        f"{LOGS}/tsne/{{dataset}}_{{backbone}}.log",
    benchmark:
        f"{BENCHMARKS}/tsne/{{dataset}}_{{backbone}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=mem_mb("tsne"),
        runtime=fixed_runtime("report"),
    params:
        spec=as_json(config["report"]["tsne"]),
        stem="results/figures/tsne_{dataset}_{backbone}",
        sets=tsne_set_paths,
    shell:
        "python {input.script} --spec {params.spec:q} --models {input.models}"
        " --adversarial {params.sets} --data {input.data} --out-stem {params.stem}"
        " --threads {threads} > {log} 2>&1"
