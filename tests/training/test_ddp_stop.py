"""Shared state of torchrun ranks (2 CPU processes, gloo).

SIGTERM reaches the ranks of a pod at slightly different times: whichever rank sees it first, every rank stops
at the same step, rank 0 checkpoints that step, and nobody is left waiting in an all-reduce. Counters each rank
keeps for its share of the batches (cached-pool hits) are summed before rank 0 reports them."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))


def _rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch
    import torch.distributed as dist
    from test_loop import FolderCheckpoints, _setup

    from rag_jobs import interrupts
    from rag_jobs.training import LoopConfig, ParamGroup, train
    from rag_jobs.training.distributed import DistInfo

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model, items, step_fn, state, load = _setup()
    ckpts = Path(out_dir) / "ckpts"
    ckpts.mkdir(exist_ok=True)

    def on_step(step: int, loss: float) -> None:
        if rank == 1 and step == 2:  # only rank 1's signal handler has run so far
            interrupts._state["requested"] = True

    outcome = {"rank": rank}
    try:
        train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
              cfg=LoopConfig(epochs=1, batch_size=4, checkpoint_every=100, seed=0), trainable_state=state,
              load_trainable=load, checkpoints=FolderCheckpoints(ckpts), work_dir=Path(out_dir) / f"w{rank}",
              dist_info=DistInfo(rank, world, rank), on_step=on_step)
        outcome["stopped"] = None
    except interrupts.Preempted as exc:
        outcome["stopped"] = str(exc)
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(outcome))
    dist.destroy_process_group()
    del torch


@pytest.mark.timeout(180)
def test_a_stop_seen_by_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    ctx = mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 150
    while not ctx.join(timeout=5):  # join() returns each time one process ends
        assert time.monotonic() < deadline, "a rank is still running: the ranks did not stop together"
    outcomes = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(o["stopped"] and "at step 3/10" in o["stopped"] for o in outcomes), outcomes
    assert [p.name for p in (tmp_path / "ckpts").iterdir()] == ["00000003"]  # rank 0 kept the step it stopped at


def _count_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    from rag_jobs.training.distributed import DistInfo, all_reduce_sum_counts

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    total = all_reduce_sum_counts([10 + rank, 3 * rank], DistInfo(rank, world, rank))
    (Path(out_dir) / f"count{rank}.json").write_text(json.dumps(total))
    dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_counts_are_summed_over_ranks(tmp_path):
    mp.spawn(_count_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    assert [json.loads((tmp_path / f"count{r}.json").read_text()) for r in range(2)] == [[21, 3], [21, 3]]
