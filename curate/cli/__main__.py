"""`python -m curate.cli ...`: the `oxa` command, for launchers that take a module (torchrun, accelerate)."""

from curate.cli import main

main()
