# Aggregation: the paper's tables and figures, the findings, and the report.


def main_table_inputs(wildcards):
    """The suite summaries and metrics every row of Table 1 / 2 reads (chosen steps resolved)."""
    student = STUDENTS_BY_TABLE[int(wildcards.table)]
    rows = tables.main_rows(config, student)
    chosen = {r.run: chosen_step(r.run) for r in rows if r.step == tables.CHOSEN}
    return {
        "summaries": [suite_summary(r.run, tables.resolve_step(r, chosen)) for r in rows],
        "metrics": [f"results/runs/{r.run}/metrics.csv" for r in rows if r.method != "base"],
        "chosen": [f"results/eval/{run}/chosen.json" for run in chosen],
    }


rule main_table:
    input:
        unpack(main_table_inputs),
        code=package_modules("tables"),
    output:
        csv=report("results/tables/table{table}.csv", category="Tables", caption="../report/main_table.rst"),
        md="results/tables/table{table}.md",
        tex="results/tables/table{table}.tex",
    log:
        "results/logs/aggregate/table{table}.log",
    params:
        student=lambda wc: STUDENTS_BY_TABLE[int(wc.table)],
        config=config,
    wildcard_constraints:
        table="1|2",
    conda:
        "../../envs/main.yaml"
    script:
        "../scripts/main_table.py"


rule checkpoint_table:
    input:
        chosen=lambda wc: [f"results/eval/{r}/chosen.json" for r in curve_runs_of_table(wc.table)],
        code=package_modules("tables"),
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
