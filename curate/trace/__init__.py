"""`oxa trace`: each pool problem's gold answer, looked up in reference data sets
(exact, normalized, then fuzzy matching; conflicts and placeholders recorded).

Guide: docs/trace-verify.md.
"""

from curate.trace.trace import TraceConfig, run_trace

__all__ = ["TraceConfig", "run_trace"]
