"""Step configs refuse NaN and infinite floats everywhere, with a one-line error naming the field."""

import math

import pytest

from rag_jobs.config import JointConfig, parse_config, step_config
from rag_jobs.errors import ConfigError


@pytest.mark.parametrize("field,value", [("tau", math.inf), ("tau", math.nan), ("max_grad_norm", math.inf),
                                         ("scale", -math.inf)])
def test_non_finite_floats_are_refused(field, value):
    kind = "finetune-embed" if field == "scale" else "joint"
    data = {"lr" if kind == "finetune-embed" else "embed_lr": 1e-4, field: value}
    with pytest.raises(ConfigError, match=field) as info:
        step_config(kind, data)
    assert "\n" not in str(info.value)


def test_finite_values_still_pass():
    cfg = parse_config(JointConfig, {"gen_lr": 1e-4, "train": "generator", "tau": 0.1, "max_grad_norm": 2.0})
    assert cfg.tau == 0.1 and cfg.max_grad_norm == 2.0
