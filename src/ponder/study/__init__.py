"""Studies: the TOML schema, loading and validation (spec) and the expansion into runs (plan)."""

from ponder.study.plan import Arm, Population, Run, expand, populations
from ponder.study.spec import Study, builtin_studies, load_study, resolve_study_path

__all__ = ["Study", "load_study", "builtin_studies", "resolve_study_path", "Arm", "Run", "Population", "expand", "populations"]
