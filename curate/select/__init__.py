"""`oxa select`: training subsets from the candidates view (Gaussian-guided PPL sampling,
Algorithm 1, and the paper's baselines), published through `curate.subsets`.
"""

from curate.select.config import SelectConfig, Selection, load_select_config
from curate.select.select import run_select

__all__ = ["SelectConfig", "Selection", "load_select_config", "run_select"]
