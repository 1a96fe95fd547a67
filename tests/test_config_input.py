"""What users hand oxa's config reader is read exactly or refused in one line: canonical
keys and the paper's symbols both override a preset, integers keep every digit, a file
that is not UTF-8 and numbers no Gaussian can use are named, not tracebacks."""

from __future__ import annotations

import pytest

from curate.select import load_select_config
from curate.workspace import OxaError


def test_a_key_overrides_a_preset_under_either_name():
    # sft-random sets N; --set n= used to fail with "sets 'n' twice"
    assert load_select_config("sft-random", ["n=7"]).n == 7
    assert load_select_config("sft-random", ["N=8"]).n == 8
    config = load_select_config("oxa-mle-qwen2.5-1.5b", ["max_per_problem=4", "w=0.1"])
    assert (config.max_per_problem, config.bin_width) == (4, 0.1)  # the preset writes d and w
    assert load_select_config("oxa-full-qwen2.5-1.5b", ["positives.n=5"]).positives.n == 5
    assert load_select_config("sft-random", ["n=7", "N=9"]).n == 9  # the last one given wins


def test_integers_are_read_exactly():
    assert load_select_config("sft-random", ["seed=9007199254740993"]).seed == 9007199254740993  # 2**53 + 1
    assert load_select_config("sft-random", ["N=5e4"]).n == 50_000
    assert load_select_config("sft-random", ["N=50_000"]).n == 50_000
    with pytest.raises(OxaError, match=r"^n must be int, got '2.5'$"):
        load_select_config("sft-random", ["N=2.5"])


def test_a_config_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_bytes('name = "caf\u00e9"\nstrategy = "random"\nn = 3\n'.encode("latin-1"))
    with pytest.raises(OxaError, match=r"mine.toml is not UTF-8 text \(byte 11: b'\\xe9'\); save it as UTF-8"):
        load_select_config(str(path))


@pytest.mark.parametrize("setting", ["mu=1000", "mu=-1e308", "sigma=1e-300", "sigma=1e-9"])
def test_numbers_no_gaussian_can_use_are_refused_in_one_line(setting):
    with pytest.raises(OxaError, match=r"give the PPL bins of \[1.0, 5.0\] no usable density in floating point"):
        load_select_config("oxa-mle-qwen2.5-1.5b", [setting])
    assert load_select_config("oxa-mle-qwen2.5-1.5b", ["sigma=1e300"]).sigma == 1e300  # flat, but usable
