"""Analysis: steps table -> per-group CBS with intervals -> power laws -> predictions.

Every CLI verb mirrors a function here: ``scaling cbs`` = ``critical_batch_sizes(load_steps(p))``,
``scaling fit`` = ``fit_law(...)`` then ``LawFit.save``, ``scaling predict`` = ``predict(load_law(p))``
or ``predict_preset(name)``.
"""

from scaling.analysis.cbs import CBSResult, GroupCBS, critical_batch_sizes, empirical_cbs, group_cbs
from scaling.analysis.definitions import (CBS_DEFINITION, DEFAULT_OVERHEAD, cbs_from_fit, cbs_hyperbola,
                                          cbs_numeric)
from scaling.analysis.fitfile import LawFit, fit_law, load_law
from scaling.analysis.laws import PowerLaw, fit_power_law
from scaling.analysis.predict import extrapolation, predict, predict_preset
from scaling.analysis.presets import PRESETS, get_preset
from scaling.analysis.steps_table import Group, StepsTable, load_steps

__all__ = ["CBSResult", "GroupCBS", "critical_batch_sizes", "empirical_cbs", "group_cbs", "CBS_DEFINITION",
           "DEFAULT_OVERHEAD", "cbs_from_fit", "cbs_hyperbola", "cbs_numeric", "LawFit", "fit_law",
           "load_law", "PowerLaw", "fit_power_law", "extrapolation", "predict", "predict_preset", "PRESETS",
           "get_preset", "Group", "StepsTable", "load_steps"]
