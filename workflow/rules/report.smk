"""Tables (CSV, Markdown, LaTeX) and figures (PNG, PDF) from every metrics JSON."""


rule tables:
    input:
        ALL_METRICS,
    output:
        inputs="results/tables/inputs.txt",
        long="results/tables/long.csv",
        csv=report("results/tables/main.csv", caption="../report/main_table.rst", category="Tables"),
        md="results/tables/main.md",
        tex="results/tables/main.tex",
    params:
        main_eps=config["report"]["main_eps_255"],
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{BENCHMARKS}/tables.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["report"],
    conda:
        "../../envs/report.yaml"
    shell:
        # printf is a shell builtin: no argument-length limit for thousands of inputs
        "printf '%s\\n' {input} > {output.inputs} && "
        "{PYTHON} {SRC}/tables.py --inputs {output.inputs} --main-eps {params.main_eps}"
        " --long {output.long} --csv {output.csv} --md {output.md} --tex {output.tex}"
        " > {log} 2>&1"


rule figures:
    input:
        "results/tables/long.csv",
    output:
        report(
            expand("results/figures/{name}.png", name=FIGURE_NAMES),
            caption="../report/figures.rst",
            category="Figures",
        ),
        expand("results/figures/{name}.pdf", name=FIGURE_NAMES),
    params:
        main_eps=config["report"]["main_eps_255"],
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{BENCHMARKS}/figures.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["mem_mb"],
        runtime=RUNTIME["report"],
    conda:
        "../../envs/report.yaml"
    shell:
        "{PYTHON} {SRC}/figures.py --long {input} --main-eps {params.main_eps}"
        " --out-dir results/figures > {log} 2>&1"
