# Reproduction of "Fast and Effective On-policy Distillation from Reasoning Prefixes".
# Default: the embedded toy world (config/config.yaml). Paper scale: --configfile config/paper.yaml.
import sys

from snakemake.utils import min_version, validate

from prefix_opd.runs import ConfigError
from prefix_opd.validate import check_schema

min_version("9.0")


configfile: "config/config.yaml"


try:  # one line naming the key, before Snakemake's own (verbose) validation fills in the defaults
    check_schema(config)
except ConfigError as err:
    sys.exit(f"Invalid config: {err}")
validate(config, "config/schemas/config.schema.yaml")


# Each world writes its own result tree: the toy world's `results/` here, the paper world's under
# `world_dir` (config/paper.yaml: paper-scale/results/), so a paper run never touches toy outputs.
if config["world_dir"] != ".":

    workdir: config["world_dir"]


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/analysis.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
