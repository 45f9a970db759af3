# Reproduction of "Fast and Effective On-policy Distillation from Reasoning Prefixes".
# Default: the embedded toy world (config/config.yaml). Paper scale: --configfile config/paper.yaml.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schemas/config.schema.yaml")


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
