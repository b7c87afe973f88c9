"""Grid children are named by their exact learning rate: nearby rates never collide, repeats are refused."""

import pytest

from rag_jobs.errors import ConfigError
from rag_jobs.strategies import RunSettings, build_graph
from rag_jobs.strategies.catalog import lr_tag


@pytest.mark.parametrize("lr,tag", [(1e-5, "lr-1e-05"), (3e-4, "lr-3e-04"), (1.5e-5, "lr-1.5e-05"),
                                    (1.2e-4, "lr-1.2e-04"), (1.0, "lr-1e00")])
def test_lr_tag_is_exact_and_keeps_the_old_names(lr, tag):
    assert lr_tag(lr) == tag


def test_nearby_learning_rates_each_get_their_own_child():
    grid = (1e-5, 1.5e-5, 2e-5)
    graph = build_graph("ft-embed", RunSettings(embed_lr_grid=grid), run_id="near")
    children = [s for s in graph.steps if s.kind == "finetune-embed"]
    assert sorted(c.config["lr"] for c in children) == sorted(grid)
    select = next(s for s in graph.steps if s.kind == "select")
    assert len(set(select.inputs.values())) == 3


def test_a_repeated_learning_rate_is_refused():
    with pytest.raises(ConfigError, match="repeats"):
        build_graph("ft-gen", RunSettings(gen_lr_grid=(1e-4, 1e-4)), run_id="dup")
