"""`oxa decontaminate`: the pool problems (and responses) that hold a benchmark problem
(copies, drifted or edited copies, copies inside a longer text) and the template
matches (the benchmark problem with other numbers), for selection to keep out.

Guide: docs/decontaminate.md.
"""

from curate.decontaminate.decontaminate import DecontaminateConfig, run_decontaminate
from curate.decontaminate.matching import CONTAMINATED, METHODS

__all__ = ["CONTAMINATED", "METHODS", "DecontaminateConfig", "run_decontaminate"]
