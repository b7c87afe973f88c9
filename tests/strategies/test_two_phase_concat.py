"""`phase1: concat`: two-phase takes its generator from the Ft. Gen. grid (shared with it in compare)."""

from rag_jobs.jobs.registry import step_config
from rag_jobs.strategies import RunSettings, build_graph

GRIDS = {"embed_lr_grid": (1e-5, 3e-5), "gen_lr_grid": (1e-4, 3e-4)}


def test_concat_phase1_is_the_ft_gen_grid():
    graph = build_graph("two-phase", RunSettings(phase1="concat", **GRIDS), run_id="c")
    names = {s.name for s in graph.steps}
    assert not any(n.startswith("phase1-gen") for n in names) and "select-phase1" not in names
    assert {"finetune-gen.lr-1e-04", "finetune-gen.lr-3e-04", "select-gen"} <= names
    for step in ("phase2-pool", "phase2-embed.lr-1e-05", "evaluate-two-phase"):
        assert graph.step(step).inputs["generator"] == "select-gen"


def test_concat_phase1_in_compare_adds_no_generator_training():
    rag = build_graph("compare", RunSettings(**GRIDS), run_id="r")
    concat = build_graph("compare", RunSettings(phase1="concat", **GRIDS), run_id="c")
    trained = {s.name for s in concat.steps if s.kind in ("finetune-gen", "joint") and "generator" not in s.inputs
               and step_config(s.kind, s.config).model_dump().get("train", "generator") == "generator"}
    assert trained == {"finetune-gen.lr-1e-04", "finetune-gen.lr-3e-04"}
    assert len(rag.steps) - len(concat.steps) == 3  # the phase-1 grid and its selection
    assert concat.step("joint-token").inputs["lr-generator"] == "select-gen"


def test_the_default_graph_is_unchanged():
    graph = build_graph("two-phase", RunSettings(**GRIDS), run_id="d")
    assert graph.step("evaluate-two-phase").inputs["generator"] == "select-phase1"
    assert "phase1" not in graph.step("phase2-pool").config


def test_the_pool_step_runs_on_the_kind_of_device_its_children_use():
    for gpus, pool_gpus in ((0, 0), (1, 1), (8, 1)):
        graph = build_graph("two-phase", RunSettings(gpus=gpus, **GRIDS), run_id="g")
        assert graph.step("phase2-pool").gpus == pool_gpus
        assert graph.step("phase2-embed.lr-1e-05").gpus == gpus


def test_the_pool_holds_twice_the_training_k_unless_given():
    def pool(**kw):
        return build_graph("two-phase", RunSettings(**GRIDS, **kw), run_id="p").step("phase2-pool").config["pool"]

    assert pool() == 10  # the default k = 5: the pool of every earlier run, so their steps are still shared
    assert pool(train={"k": 3}) == 6
    assert pool(train={"k": 3}, phase2_pool=8) == 8
    off = build_graph("two-phase", RunSettings(**GRIDS, phase2_pool=0), run_id="o")
    assert "phase2-pool" not in {s.name for s in off.steps}
