"""Preloaded by the fork server of verification workers (DeadlinePool `preload`): it
imports math-verify and parses typical answers once, so that every worker forked from
it, and every replacement, starts with the parser's caches warm."""

from curate.verify.mathcheck import warm_up

warm_up()
