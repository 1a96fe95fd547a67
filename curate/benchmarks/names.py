"""The built-in benchmark sets by name: curate/data/benchmarks/<name>.json."""

BUILTIN = ("aime24", "aime25", "brumo25", "cmimc25", "hmmt25", "minerva")
