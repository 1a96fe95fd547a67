"""`oxa verify`: a math-verify verdict for every sample against its problem's gold.

The math-verify calls and the worker pool with wall-clock deadlines live here; tracing
(equal answers) and the trainer's judge and reward use them from this folder.

Guide: docs/trace-verify.md.
"""

from curate.verify.mathcheck import VerifierSettings
from curate.verify.verify import VerifyConfig, run_verify

__all__ = ["VerifierSettings", "VerifyConfig", "run_verify"]
