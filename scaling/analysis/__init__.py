"""Analysis: steps table -> per-group CBS with intervals -> power laws -> predictions.

Every CLI verb mirrors a function here: ``scaling cbs`` = ``critical_batch_sizes(load_steps(p))``,
``scaling fit`` = ``fit_law(...)`` then ``LawFit.save``, ``scaling predict`` = ``predict(load_law(p))``
or ``predict_preset(name)``, ``scaling optimum`` = ``optima(load_losses(p))`` then
``fit_optimum_laws``, ``scaling plan`` = ``plan(law_from_fit(...) or law_from_preset(...), ...)``.
"""

from scaling.analysis.cbs import CBSResult, GroupCBS, critical_batch_sizes, empirical_cbs, group_cbs
from scaling.analysis.definitions import (CBS_DEFINITION, DEFAULT_OVERHEAD, cbs_from_fit, cbs_hyperbola,
                                          cbs_numeric)
from scaling.analysis.fitfile import LawFit, fit_law, load_law
from scaling.analysis.laws import OffsetLaw, PowerLaw, fit_offset_law, fit_power_law
from scaling.analysis.lossgrid import LossGrid, load_losses
from scaling.analysis.optimum import OptimumResult, optima
from scaling.analysis.optimumfit import fit_optimum_laws
from scaling.analysis.planner import Hardware, law_from_fit, law_from_preset, plan
from scaling.analysis.predict import extrapolation, predict, predict_preset
from scaling.analysis.presets import PRESETS, get_preset
from scaling.analysis.steps_table import Group, StepsTable, load_steps

__all__ = ["CBSResult", "GroupCBS", "critical_batch_sizes", "empirical_cbs", "group_cbs", "CBS_DEFINITION",
           "DEFAULT_OVERHEAD", "cbs_from_fit", "cbs_hyperbola", "cbs_numeric", "LawFit", "fit_law",
           "load_law", "PowerLaw", "fit_power_law", "extrapolation", "predict", "predict_preset", "PRESETS",
           "get_preset", "Group", "StepsTable", "load_steps", "OffsetLaw", "fit_offset_law", "LossGrid",
           "load_losses", "OptimumResult", "optima", "fit_optimum_laws", "Hardware", "law_from_fit",
           "law_from_preset", "plan"]
