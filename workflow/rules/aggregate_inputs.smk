# Input functions of the aggregation rules (aggregate.smk): which files each table, figure and the
# findings read, with the lr-matched checkpoints resolved from their Snakemake checkpoint.
from prefix_opd import efficiency, figures, findings, paths


def main_table_inputs(wildcards):
    """The suite summaries and metrics every row of Table 1 / 2 reads."""
    student = STUDENTS_BY_TABLE[int(wildcards.table)]
    rows = tables.main_rows(config, student)
    return {
        "summaries": [tables.row_summary_path(r, run) for r in rows for run in r.runs],
        "metrics": [paths.at(paths.METRICS, run=run) for r in rows if r.method != "base" for run in r.runs],
        "chosen": [paths.at(paths.CHOSEN, run=run) for r in rows if r.step == tables.CHOSEN for run in r.runs],
    }


def lr_match():
    """{run: {step, dev_mean_at_k, target}} from the match_lr checkpoint."""
    return json.loads(Path(checkpoints.match_lr.get().output[0]).read_text())


def lr_table_inputs(wildcards):
    """Table 4 reads the full suite of the base model and of each lr's matched checkpoint."""
    student = config["experiments"]["lr_sweep"]["student"]
    points = [(base_run(student), 0)] + [(run, m["step"]) for run, m in lr_match().items()]
    summaries = [paths.at(paths.SUITE_SUMMARY, run=run, step=step) for run, step in points]
    return {"match": paths.LR_MATCH, "summaries": summaries}


def findings_inputs(wildcards):
    """Every file the claims read, the lr-matched checkpoints resolved from their Snakemake checkpoint."""
    return findings.inputs(config, lr_match())
