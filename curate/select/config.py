"""The selection config: which strategy, with what parameters, over which candidates.

A config names a subset and one selection (`Selection`), or for `mix` (OXA_Full) a
`positives` and a `negatives` selection that become loss_type 0 and 1. Each strategy
reads only some fields; a config file that sets a field its strategy does not read is an
error, and only the fields read enter the subset's version (with the inputs'
fingerprints and the code version). `name`, `description` and `owner` are cosmetic.

A config file's description was written for the file's selection: when `--set` changes
that selection, the config remembers the selection described, so that the card can say
what was selected instead (`SelectConfig.description_overrides`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from curate.select.gaussian import FILLS, ROUNDINGS, GaussianParams, bin_count, densities
from curate.workspace import OxaError, check_tag
from curate.workspace.configfile import apply_overrides, build_config, load_config_file

STRATEGIES = ("gaussian", "lowest_ppl", "random", "interval", "long_low_ppl", "pass_rate", "mix")
# The paper's symbols (Algorithm 1, appendix A.3), accepted as keys and in --set.
ALIASES = {"N": "n", "d": "max_per_problem", "w": "bin_width"}
COSMETIC = ("name", "description", "owner")
# Subset-wide keys, read whatever the strategy: which decontamination matches to leave out.
SUBSET_FIELDS = ("exclude_contaminated", "drop_templates")
_SAMPLE_FIELDS = ("strategy", "where", "n", "scores_tag", "max_per_problem", "seed", "allow_shortfall")
STRATEGY_FIELDS: dict[str, tuple[str, ...]] = {
    "gaussian": (*_SAMPLE_FIELDS, "mu", "sigma", "p_min", "p_max", "bin_width", "rounding", "fill", "redistribute"),
    "lowest_ppl": _SAMPLE_FIELDS,
    "random": _SAMPLE_FIELDS,
    "interval": (*_SAMPLE_FIELDS, "p_min", "p_max"),
    "long_low_ppl": (*_SAMPLE_FIELDS, "min_length_quantile"),
    "pass_rate": ("strategy", "where", "n", "seed", "allow_shortfall", "k", "min_pass_rate", "max_pass_rate"),
    "mix": ("strategy", "positives", "negatives"),
}
NEEDS_SCORES = ("gaussian", "lowest_ppl", "interval", "long_low_ppl")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _help(text: str, **kwargs) -> dict:
    return {"metadata": {"help": text}, **kwargs}


@dataclass(kw_only=True)
class Selection:
    """One strategy and its parameters."""

    strategy: str = field(**_help("gaussian | lowest_ppl | random | interval | long_low_ppl | pass_rate | mix"))
    n: int | None = field(**_help("rows to select (problems for pass_rate); the paper uses 50,000", default=None))
    where: str | None = field(
        **_help(
            "SQL predicate over the candidates view, which also has ppl and n_tokens for scores_tag, "
            "e.g. \"verdict = 'correct' AND origin = 'teacher'\"",
            default=None,
        )
    )
    scores_tag: str | None = field(
        **_help("scoring model whose ppl_<tag> and n_tokens_<tag> the strategy reads (scores/<tag>/)", default=None)
    )
    max_per_problem: int | None = field(
        **_help("at most this many rows per problem, counted across the whole selection (null: no cap)", default=1)
    )
    seed: int = field(**_help("seed of the tie-break (gaussian, interval, ...) and of random orders", default=0))
    allow_shortfall: bool = field(
        **_help("accept a subset smaller than its target (recorded in the card) instead of failing", default=False)
    )
    mu: float = field(**_help("gaussian: centre of the target PPL distribution (paper: 2.5 or 3.0)", default=2.5))
    sigma: float = field(**_help("gaussian: its standard deviation (paper: 0.25)", default=0.25))
    p_min: float = field(**_help("gaussian, interval: lowest PPL kept (paper: 1.0)", default=1.0))
    p_max: float = field(**_help("gaussian, interval: highest PPL kept (paper: 5.0)", default=5.0))
    bin_width: float = field(**_help("gaussian: the width of a PPL bin (paper: 0.05)", default=0.05))
    rounding: str = field(
        **_help(
            "gaussian: per-bin targets by 'floor' (the paper's pseudocode) or 'largest_remainder' "
            "(the paper's code; sums to N)",
            default="largest_remainder",
        )
    )
    fill: str = field(
        **_help(
            "gaussian: how a bin is filled, longest first either way: 'longest_first' (Algorithm 1 as printed: "
            "one walk, a row while its problem has fewer than d) or 'round_robin' (the released "
            "make_OXA_MLE_data.py: passes k = 1..d, pass k taking a problem's k-th row of the bin)",
            default="longest_first",
        )
    )
    redistribute: bool = field(
        **_help(
            "gaussian, fill longest_first: give a short bin's shortfall to its nearest bins that have rows left",
            default=False,
        )
    )
    min_length_quantile: float = field(
        **_help("long_low_ppl: keep rows at least as long as this quantile of the candidates' n_tokens", default=0.5)
    )
    k: int = field(**_help("pass_rate: judged samples a problem needs (the paper: 8 rollouts)", default=8))
    min_pass_rate: float = field(**_help("pass_rate: lowest pass rate kept (paper: 0.2)", default=0.2))
    max_pass_rate: float = field(**_help("pass_rate: highest pass rate kept (paper: 0.8)", default=0.8))

    def resolved(self) -> dict:
        """The fields this strategy reads: what the subset's version hashes."""
        return {name: getattr(self, name) for name in STRATEGY_FIELDS[self.strategy] if name not in COSMETIC}

    def validate(self, where: str = "config") -> None:
        s = self.strategy
        if s not in STRATEGIES:
            raise OxaError(f"{where}: unknown strategy {s!r}; choose one of {', '.join(STRATEGIES)}")
        if self.n is None or self.n < 1:
            raise OxaError(f"{where}: n (N, the rows to select) must be a positive integer, got {self.n}")
        if s in NEEDS_SCORES and not self.scores_tag:
            raise OxaError(f"{where}: strategy {s!r} reads PPL: set scores_tag to a scoring model's tag")
        if self.scores_tag:
            check_tag(self.scores_tag)
        if self.max_per_problem is not None and self.max_per_problem < 1:
            raise OxaError(
                f"{where}: max_per_problem (d) must be at least 1, or null for no cap; got {self.max_per_problem}"
            )
        if self.where is not None and not self.where.strip():
            raise OxaError(f"{where}: where is empty; leave it out to keep every candidate")
        if s in ("gaussian", "interval"):
            _finite(where, p_min=self.p_min, p_max=self.p_max)
            if self.p_min >= self.p_max:
                raise OxaError(f"{where}: p_min ({self.p_min}) must be below p_max ({self.p_max})")
        if s == "gaussian":
            _finite(where, mu=self.mu, sigma=self.sigma, bin_width=self.bin_width)
            if self.sigma <= 0:
                raise OxaError(f"{where}: sigma must be > 0 (the paper uses 0.25), got {self.sigma}")
            if self.bin_width <= 0:
                raise OxaError(f"{where}: bin_width (w) must be > 0 (the paper uses 0.05), got {self.bin_width}")
            if (self.p_max - self.p_min) / self.bin_width > 10_000:
                raise OxaError(f"{where}: bin_width {self.bin_width} makes over 10,000 bins; use a wider one")
            if bin_count(self.p_min, self.p_max, self.bin_width) < 1:
                raise OxaError(
                    f"{where}: bin_width {self.bin_width} is over twice the PPL range [{self.p_min}, {self.p_max}]: "
                    f"round(range / w) gives no bin; use w <= {self.p_max - self.p_min}"
                )
            if self.rounding not in ROUNDINGS:
                raise OxaError(f"{where}: rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")
            if self.fill not in FILLS:
                raise OxaError(f"{where}: fill must be one of {', '.join(FILLS)}, got {self.fill!r}")
            # every bin's density must be a number: mu 1000 or sigma 1e-300 leave none
            densities(
                GaussianParams(
                    self.mu, self.sigma, self.p_min, self.p_max, self.bin_width, self.n, self.rounding,
                    self.redistribute, self.fill,
                )
            )  # fmt: skip
            if self.redistribute and self.fill != "longest_first":
                raise OxaError(
                    f"{where}: redistribute applies to fill 'longest_first' only; the released script's "
                    f"{self.fill!r} fill has no redistribution: set redistribute = false or fill = 'longest_first'"
                )
        if s == "long_low_ppl" and not 0 <= self.min_length_quantile <= 1:
            raise OxaError(f"{where}: min_length_quantile must lie in [0, 1], got {self.min_length_quantile}")
        if s == "pass_rate":
            if self.k < 1:
                raise OxaError(f"{where}: k must be at least 1, got {self.k}")
            if not 0 <= self.min_pass_rate <= self.max_pass_rate <= 1:
                raise OxaError(
                    f"{where}: need 0 <= min_pass_rate <= max_pass_rate <= 1, "
                    f"got {self.min_pass_rate} and {self.max_pass_rate}"
                )


def _finite(where: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise OxaError(f"{where}: {name} must be a finite number, got {value}")


@dataclass(kw_only=True)
class SelectConfig(Selection):
    """A subset: its name, cosmetic metadata, and its selection."""

    name: str = field(**_help("subset name: the folder subsets/<name>/ (letters, digits, '_', '.', '-')"))
    description: str = field(**_help("what the subset is for (cosmetic: does not change the version)", default=""))
    owner: str = field(**_help("who is responsible for it (cosmetic)", default=""))
    positives: Selection | None = field(**_help("mix: the selection trained with loss_type 0 (MLE)", default=None))
    negatives: Selection | None = field(
        **_help("mix: the selection trained with loss_type 1 (unlikelihood)", default=None)
    )
    exclude_contaminated: bool = field(
        **_help(
            "leave out candidates that `oxa decontaminate` found to hold a benchmark problem (methods exact, "
            "contained, near); false keeps them, and the card says how many rows it kept",
            default=True,
        )
    )
    drop_templates: bool = field(
        **_help("also leave out template matches: a benchmark problem with other numbers or expressions", default=False)
    )

    def __post_init__(self) -> None:
        # Not a config key: the selection (resolved()) that `description` was written for, when it
        # is not this one's; load_select_config sets it when --set changed the config file's.
        self.described_selection: dict | None = None

    def description_overrides(self) -> dict[str, list]:
        """Each selection key whose value differs from the one the description was written
        for (dotted for a mix part): [described, selected]. Empty when the description
        describes this selection."""
        return {} if self.described_selection is None else _changed(self.described_selection, self.resolved())

    def dropped_methods(self) -> list[str]:
        """The contamination methods whose candidates this subset leaves out."""
        from curate.decontaminate.matching import CONTAMINATED

        return [*(CONTAMINATED if self.exclude_contaminated else ()), *(("template",) if self.drop_templates else ())]

    def parts(self) -> list[tuple[str, int, Selection]]:
        """(label, loss_type, selection) for each part of the subset."""
        if self.strategy == "mix":
            assert self.positives is not None and self.negatives is not None
            return [("positives", 0, self.positives), ("negatives", 1, self.negatives)]
        return [("selection", 0, self)]

    def resolved(self) -> dict:
        subset = {name: getattr(self, name) for name in SUBSET_FIELDS}
        if self.strategy == "mix":
            return {"strategy": "mix", **{label: part.resolved() for label, _, part in self.parts()}, **subset}
        return {**super().resolved(), **subset}

    def validate(self, where: str = "config") -> None:
        if not _NAME.match(self.name):
            raise OxaError(
                f"invalid subset name {self.name!r}: use letters, digits, '_', '.' or '-' "
                "(at most 100, starting with a letter or digit)"
            )
        if self.strategy != "mix":
            if self.positives is not None or self.negatives is not None:
                raise OxaError(f"positives and negatives belong to strategy 'mix', not {self.strategy!r}")
            super().validate(where)
            return
        for label, _, part in [
            ("positives", 0, self.positives),
            ("negatives", 1, self.negatives),
        ]:
            if part is None:
                raise OxaError(f"strategy 'mix' needs a [{label}] table with its own strategy, n, where, ...")
            if part.strategy in ("mix", "pass_rate"):
                raise OxaError(f"{label}: a mix part selects responses; strategy {part.strategy!r} cannot be one")
            part.validate(label)


def _check_keys(data: dict, allowed: tuple[str, ...], where: str) -> None:
    """A key the strategy does not read is a mistake (a typo, or the wrong strategy)."""
    strategy = data.get("strategy")
    if strategy not in STRATEGY_FIELDS:
        raise OxaError(f"{where}: strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    known = {f.name for f in fields(SelectConfig)}
    for key in data:
        name = ALIASES.get(key, key)
        if name in known and name not in allowed and name not in STRATEGY_FIELDS[strategy]:
            raise OxaError(
                f"{where}: {key!r} does not apply to strategy {strategy!r}; "
                f"it reads: {', '.join(STRATEGY_FIELDS[strategy])}"
            )


def load_select_config(ref: str | Path, overrides: list[str] | None = None) -> SelectConfig:
    """A validated SelectConfig from a TOML/YAML file or a preset name, with `--set` overrides."""
    data = apply_overrides(load_config_file(ref), overrides or [], ALIASES)
    _check_keys(data, COSMETIC + SUBSET_FIELDS, "config")
    for label in ("positives", "negatives"):
        if isinstance(data.get(label), dict):
            _check_keys(data[label], (), label)
    config = build_config(SelectConfig, data, ALIASES)
    config.validate()
    if overrides:
        config.described_selection = _described_selection(ref, overrides, config)
    return config


def _described_selection(ref: str | Path, overrides: list[str], config: SelectConfig) -> dict | None:
    """The selection the config file's description was written for: the file's own, with
    only the --set of name and owner. None when there is no description to compare, when
    --set gave the description, or when the file is no whole config without its --set."""
    kept = [item for item in overrides if item.partition("=")[0].strip() in ("name", "owner")]
    try:
        described = build_config(SelectConfig, apply_overrides(load_config_file(ref), kept, ALIASES), ALIASES)
        described.validate()
    except OxaError:
        return None
    if not described.description or described.description != config.description:
        return None
    return described.resolved()


def _changed(described: dict, selected: dict, prefix: str = "") -> dict[str, list]:
    """The keys whose values differ between two resolved selections, a mix part's dotted."""
    changed = {}
    for key in sorted(described.keys() | selected.keys()):
        before, now = described.get(key), selected.get(key)
        if isinstance(before, dict) and isinstance(now, dict):
            changed.update(_changed(before, now, f"{prefix}{key}."))
        elif before != now:
            changed[f"{prefix}{key}"] = [before, now]
    return changed
