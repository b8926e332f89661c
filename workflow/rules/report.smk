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
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{BENCHMARKS}/tables.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["report"],
    params:
        main_eps=config["report"]["main_eps_255"],
    shell:
        # printf is a shell builtin: no argument-length limit for thousands of inputs
        "printf '%s\\n' {input.metrics} > {output.inputs} && "
        "python {input.script} --inputs {output.inputs} --main-eps {params.main_eps}"
        " --long {output.long} --csv {output.csv} --md {output.md} --tex {output.tex}"
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
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["report"],
    params:
        main_eps=config["report"]["main_eps_255"],
    shell:
        "python {input.script} --long {input.long} --main-eps {params.main_eps}"
        " --out-dir results/figures > {log} 2>&1"
