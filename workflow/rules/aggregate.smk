# Aggregation: the paper's tables and figures, the findings, and the report (`snakemake --report`:
# every table csv and figure png below is a report item with its caption in workflow/report/).
# The input functions live in aggregate_inputs.smk.


include: "aggregate_inputs.smk"


rule main_table:
    input:
        unpack(main_table_inputs),
        code=script_code("main_table"),
    output:
        csv=report("results/tables/table{table}.csv", category="Tables", caption="../report/main_table.rst"),
        md="results/tables/table{table}.md",
        tex="results/tables/table{table}.tex",
    log:
        "results/logs/aggregate/table{table}.log",
    params:
        student=lambda wc: STUDENTS_BY_TABLE[int(wc.table)],
        rows=lambda wc: tables.main_rows(config, STUDENTS_BY_TABLE[int(wc.table)]),
    wildcard_constraints:
        table="1|2",
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/main_table.py"


rule checkpoint_table:
    input:
        chosen=lambda wc: [paths.at(paths.CHOSEN, run=r) for r in curve_runs_of_table(wc.table)],
        code=script_code("checkpoint_table"),
    output:
        csv=report("results/tables/table{table}.csv", category="Tables", caption="../report/checkpoint_table.rst"),
        md="results/tables/table{table}.md",
        tex="results/tables/table{table}.tex",
    log:
        "results/logs/aggregate/table{table}.log",
    params:
        runs=lambda wc: curve_runs_of_table(wc.table),
    wildcard_constraints:
        table="5|6",
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/checkpoint_table.py"


rule window_table:
    input:
        curves=[paths.at(paths.CURVE, run=run) for _method, run in tables.window_rows(config, RUNS)],
        code=script_code("window_table"),
    output:
        csv=report("results/tables/table3.csv", category="Tables", caption="../report/table3.rst"),
        md="results/tables/table3.md",
        tex="results/tables/table3.tex",
    log:
        "results/logs/aggregate/table3.log",
    params:
        spec=tables.window_spec(config),
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/window_table.py"


checkpoint match_lr:
    input:
        curves=[paths.at(paths.CURVE, run=run) for run in tables.lr_runs(config)],
        code=script_code("match_lr"),
    output:
        paths.LR_MATCH,
    log:
        "results/logs/aggregate/lr_match.log",
    params:
        runs=tables.lr_runs(config),
        dev=DEV,
        tolerance=config["experiments"]["lr_sweep"]["dev_tolerance"],
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/match_lr.py"


rule lr_table:
    input:
        unpack(lr_table_inputs),
        code=script_code("lr_table"),
    output:
        csv=report("results/tables/table4.csv", category="Tables", caption="../report/table4.rst"),
        md="results/tables/table4.md",
        tex="results/tables/table4.tex",
    log:
        "results/logs/aggregate/table4.log",
    params:
        spec=tables.lr_spec(config),
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/lr_table.py"


rule schedule_table:
    input:
        data=efficiency.inputs(efficiency.spec(config)),
        code=script_code("schedule_table"),
    output:
        csv=report("results/tables/schedules.csv", category="Tables", caption="../report/schedule_table.rst"),
        md="results/tables/schedules.md",
        tex="results/tables/schedules.tex",
    log:
        "results/logs/aggregate/schedules.log",
    params:
        spec=efficiency.spec(config),
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/schedule_table.py"


for _fig in figures.FIGURES:

    rule:
        name:
            _fig
        input:
            data=figures.inputs(_fig, figures.spec(_fig, config)),
            code=script_code("figure"),
        output:
            png=report(f"results/figures/{_fig}.png", category="Figures", caption=f"../report/{_fig}.rst"),
            pdf=f"results/figures/{_fig}.pdf",
        log:
            f"results/logs/aggregate/{_fig}.log",
        params:
            figure=_fig,
            spec=figures.spec(_fig, config),
        conda:
            "../../envs/main.yaml"
        script:
            "../scripts/figure.py"


rule findings:
    input:
        data=findings_inputs,
        code=script_code("findings"),
    output:
        md=report("results/findings.md", category="Findings", caption="../report/findings_md.rst"),
        csv=report("results/findings.csv", category="Findings", caption="../report/findings.rst"),
    log:
        "results/logs/aggregate/findings.log",
    params:
        config=config,
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/findings.py"
