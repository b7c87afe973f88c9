"""The training loop on a model small enough to reason about."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from rag_jobs.errors import ConfigError
from rag_jobs.training import LoopConfig, ParamGroup, train
from rag_jobs.training.loop import TrainingDiverged


class FolderCheckpoints:
    """CheckpointIO over a plain folder (the store-backed one is tested with the entrypoints)."""

    def __init__(self, root: Path):
        self.root = root

    def save(self, n: int, folder: Path) -> None:
        shutil.copytree(folder, self.root / f"{n:08d}")

    def latest(self, dest: Path):
        found = sorted(self.root.glob("*"))
        if not found:
            return None
        shutil.copytree(found[-1], dest, dirs_exist_ok=True)
        return int(found[-1].name)


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(40, 3, generator=g)
    items = [(x, x.sum().unsqueeze(0)) for x in xs]

    def step_fn(batch):
        x = torch.stack([b[0] for b in batch])  # (B, 3)
        y = torch.stack([b[1] for b in batch])  # (B, 1)
        return torch.nn.functional.mse_loss(model(x), y)

    def state():
        return {k: v.clone() for k, v in model.state_dict().items()}

    def load(sd):
        model.load_state_dict(sd)

    return model, items, step_fn, state, load


def _run(tmp_path, cfg, ckpt=None, lr=0.05):
    model, items, step_fn, state, load = _setup()
    res = train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), lr)],
                cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=ckpt, work_dir=tmp_path)
    return model, res


def test_loss_goes_down_and_schedule_counts_steps(tmp_path):
    cfg = LoopConfig(epochs=3, batch_size=4, grad_accum=2, log_every=5, seed=3)
    _, res = _run(tmp_path, cfg)
    assert res.steps == 15 and len(res.losses) == 15  # ceil(40/4)=10 micro -> 5 steps/epoch x 3
    assert sum(res.losses[-3:]) < sum(res.losses[:3])


def test_resume_after_interruption_is_bit_identical(tmp_path):
    cfg = LoopConfig(epochs=2, batch_size=4, grad_accum=1, checkpoint_every=3, seed=7)
    full, _ = _run(tmp_path / "a", cfg)

    class Stop(Exception):
        pass

    ckpt = FolderCheckpoints(tmp_path / "ckpts")
    (tmp_path / "ckpts").mkdir()
    model, items, step_fn, state, load = _setup()

    def on_step(step, loss):
        if step == 8:
            raise Stop()

    with pytest.raises(Stop):
        train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
              cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=ckpt, work_dir=tmp_path / "b",
              on_step=on_step)
    resumed, res = _run(tmp_path / "c", cfg, ckpt=ckpt)
    assert res.resumed_from == 6
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_divergence_and_bad_learning_rates(tmp_path):
    with pytest.raises(TrainingDiverged):
        _run(tmp_path, LoopConfig(epochs=1, batch_size=4, max_grad_norm=None), lr=1e30)
    for lr in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="learning rate"):
            _run(tmp_path, LoopConfig(), lr=lr)
    with pytest.raises(ConfigError, match="batch_size"):
        LoopConfig(batch_size=-2)


def test_each_parameter_group_is_clipped_by_its_own_norm():
    """Joint training's two learning rates stay independent: a large gradient of one model (here 100x) must not
    shrink the other's. Clipping one global norm over both did exactly that."""
    torch.manual_seed(0)
    big, small = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    items = [torch.randn(4) for _ in range(8)]

    def step_fn(batch):
        x = torch.stack(batch)  # (B, 4)
        return (100.0 * big(x)).pow(2).mean() + 0.01 * small(x).pow(2).mean()

    seen = {}

    def on_step(step, loss):  # the optimizer has stepped; the clipped gradients are still there
        seen.update({name: torch.cat([p.grad.flatten() for p in m.parameters()]).norm().item()
                     for name, m in (("big", big), ("small", small))})

    x = torch.stack(items[:8])
    expected_small = torch.autograd.grad(0.01 * small(x).pow(2).mean(), list(small.parameters()))
    expected_small = torch.cat([g.flatten() for g in expected_small]).norm().item()
    assert expected_small < 1.0  # below the clipping norm: it must reach the optimizer as it is
    groups = [ParamGroup("big", list(big.parameters()), 1e-3), ParamGroup("small", list(small.parameters()), 1e-3)]
    train(label="t", items=items, step_fn=step_fn, groups=groups, on_step=on_step,
          cfg=LoopConfig(batch_size=8, max_steps=1, max_grad_norm=1.0), trainable_state=lambda: {},
          load_trainable=lambda sd: None)
    assert seen["big"] == pytest.approx(1.0, rel=1e-4)
    assert seen["small"] == pytest.approx(expected_small, rel=1e-4)


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, dict[int, float]] = {}
    for events in sorted(folder.glob("events.out.tfevents.*")):  # one file per attempt
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return {tag: sorted(v.items()) for tag, v in out.items()}


def test_tensorboard_curves_survive_a_killed_and_resumed_run(tmp_path):
    from rag_jobs.training.tracking import TB_DIR, Tracker

    cfg = LoopConfig(epochs=2, batch_size=4, grad_accum=1, checkpoint_every=3, seed=7)  # 20 steps
    ckpt = FolderCheckpoints(tmp_path / "ckpts")
    (tmp_path / "ckpts").mkdir()

    class Stop(Exception):
        pass

    def killed_at_8(step, loss):
        if step == 8:
            raise Stop()

    model, items, step_fn, state, load = _setup()
    first = Tracker(tmp_path / "a" / TB_DIR)
    with pytest.raises(Stop):
        train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
              cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=ckpt, work_dir=tmp_path / "a",
              on_step=killed_at_8, tracker=first)
    first.close()  # the killed pod's folder is lost; only the checkpoints (with their events) survive
    model, items, step_fn, state, load = _setup()
    tracker = Tracker(tmp_path / "b" / TB_DIR, about={"step": "t"})
    res = train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
                cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=ckpt, work_dir=tmp_path / "b",
                tracker=tracker)
    tracker.scalars("validation", {"em": 0.25, "n": 4, "note": "x"}, res.steps)
    tracker.close()
    got = _scalars(tmp_path / "b" / TB_DIR)
    assert res.resumed_from == 6
    assert [s for s, _ in got["train/loss"]] == list(range(1, 21))  # 1-6 from the checkpoint, 7-20 resumed
    assert [v for s, v in got["train/loss"] if s > 6] == pytest.approx(res.losses)  # this attempt's steps
    assert [s for s, _ in got["lr/m"]] == list(range(1, 21)) and got["lr/m"][0][1] > 0
    assert got["validation/em"] == [(20, 0.25)] and "validation/note" not in got


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch):
    """A real MLflow tracking store in a folder (the file backend: mlflow-skinny has no server or database)."""
    pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "rag-jobs-test")
    return uri


def test_mlflow_gets_the_same_curve_and_a_resumed_step_continues_its_run(tmp_path, mlflow_uri, monkeypatch):
    from mlflow import MlflowClient

    from rag_jobs.training.tracking import TB_DIR, Tracker

    cfg = LoopConfig(epochs=2, batch_size=4, grad_accum=1, checkpoint_every=3, seed=7)  # 20 steps
    ckpt = FolderCheckpoints(tmp_path / "ckpts")
    (tmp_path / "ckpts").mkdir()
    about = {"run": "r1", "step": "finetune-gen.lr-1e-03", "kind": "finetune-gen", "lr": {"m": 0.05}}

    class Stop(Exception):
        pass

    def killed_at_8(step, loss):
        if step == 8:
            raise Stop()

    (tmp_path / "token").write_text("s3cret\n")  # a mounted Secret (the cluster config's mlflow_token_secret)
    monkeypatch.setenv("RAG_JOBS_MLFLOW_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    model, items, step_fn, state, load = _setup()
    first = Tracker(tmp_path / "a" / TB_DIR, about=about, track="mlflow")
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "s3cret"
    with pytest.raises(Stop):
        train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
              cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=ckpt, work_dir=tmp_path / "a",
              on_step=killed_at_8, tracker=first)
    first.close(failed=True)
    model, items, step_fn, state, load = _setup()
    tracker = Tracker(tmp_path / "b" / TB_DIR, about=about, track="mlflow")
    res = train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
                cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=ckpt, work_dir=tmp_path / "b",
                tracker=tracker)
    tracker.scalars("validation", {"em": 0.25}, res.steps)
    tracker.close()

    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("rag-jobs-test")
    (run,) = client.search_runs([exp.experiment_id])  # one MLflow run: the resumed attempt continued it
    assert run.info.status == "FINISHED" and run.info.run_name == "finetune-gen.lr-1e-03"
    assert run.data.tags["rag_jobs.run"] == "r1" and run.data.params["lr.m"] == "0.05"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert {m.step for m in history} == set(range(1, 21))
    resumed = {m.step: m.value for m in history if m.step > 8}
    assert [resumed[s] for s in range(9, 21)] == pytest.approx(res.losses[2:])  # this attempt resumed at 7
    assert {m.step for m in client.get_metric_history(run.info.run_id, "lr/m")} == set(range(1, 21))
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "validation/em")] == [(20, 0.25)]
    tb = _scalars(tmp_path / "b" / TB_DIR)  # TensorBoard got the same values
    assert dict(tb["train/loss"])[20] == pytest.approx(resumed[20])


def test_an_unreachable_mlflow_server_never_fails_training(tmp_path, monkeypatch, caplog):
    pytest.importorskip("mlflow")
    from rag_jobs.training.tracking import TB_DIR, Tracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    model, items, step_fn, state, load = _setup()
    tracker = Tracker(tmp_path / TB_DIR, about={"run": "r", "step": "s"}, track="mlflow")
    res = train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()), 0.05)],
                cfg=LoopConfig(epochs=1, batch_size=4), trainable_state=state, load_trainable=load, tracker=tracker)
    tracker.close()
    assert res.steps == 10 and "MLflow tracking is off" in caplog.text
    assert [s for s, _ in _scalars(tmp_path / TB_DIR)["train/loss"]] == list(range(1, 11))
    from rag_jobs.errors import ConfigError
    from rag_jobs.training.tracking import check_mlflow_server

    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:9.*does not answer"):  # `rag-jobs run` says so at once
        check_mlflow_server()


def test_track_must_be_known_and_mlflow_installed(tmp_path, monkeypatch):
    import importlib.util

    from rag_jobs.errors import ConfigError
    from rag_jobs.training.tracking import Tracker, require_mlflow

    with pytest.raises(ConfigError, match="'wandb'"):
        Tracker(tmp_path, track="wandb")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"rag-jobs\[mlflow\]"):
        require_mlflow()


def test_validation_loss_every_n_steps_leaves_training_unchanged_and_survives_a_resume(tmp_path):
    from rag_jobs.training.tracking import TB_DIR, Tracker

    cfg = LoopConfig(epochs=2, batch_size=4, grad_accum=1, checkpoint_every=3, seed=7, validate_every=4)  # 20 steps

    def run(evaluate, tracker=None, checkpoints=None, work=None, on_step=None):
        model, items, step_fn, state, load = _setup()
        val = items[:8]

        def val_loss():
            model.eval()
            with torch.no_grad():
                v = float(step_fn(val))
            model.train()
            return v

        return train(label="t", items=items, step_fn=step_fn, groups=[ParamGroup("m", list(model.parameters()),
                     0.05)], cfg=cfg, trainable_state=state, load_trainable=load, checkpoints=checkpoints,
                     work_dir=work, tracker=tracker, evaluate=val_loss if evaluate else None, on_step=on_step)

    plain, measured = run(False), run(True)
    assert measured.losses == plain.losses  # no random draws, no training state touched
    assert [s for s, _ in measured.val_losses] == [4, 8, 12, 16, 20] and not plain.val_losses
    assert measured.val_losses[-1][1] < measured.val_losses[0][1]

    class Stop(Exception):
        pass

    def killed_at_10(step, loss):
        if step == 10:
            raise Stop()

    (tmp_path / "ckpts").mkdir()
    ckpt = FolderCheckpoints(tmp_path / "ckpts")
    first = Tracker(tmp_path / "a" / TB_DIR)
    with pytest.raises(Stop):
        run(True, first, ckpt, tmp_path / "a", killed_at_10)
    first.close()
    second = Tracker(tmp_path / "b" / TB_DIR)
    resumed = run(True, second, ckpt, tmp_path / "b")
    assert resumed.resumed_from == 9 and [s for s, _ in resumed.val_losses] == [12, 16, 20]
    history = second.history("validation/loss")  # the whole curve: 4 and 8 came with the checkpoint's events
    assert [s for s, _ in history] == [4, 8, 12, 16, 20]
    assert [v for _, v in history] == pytest.approx([v for _, v in measured.val_losses])
    second.close()


def test_validation_loss_restores_each_submodules_mode():
    from rag_jobs.steps.training import validation_loss

    torch.manual_seed(0)
    frozen, trained = torch.nn.Sequential(torch.nn.Dropout(0.5)), torch.nn.Linear(2, 1)
    frozen.eval()
    both = torch.nn.ModuleDict({"frozen": frozen, "trained": trained}).train()
    frozen.eval()  # joint training: the frozen model stays in eval mode while the other trains
    seen = []

    def step_fn(batch):
        seen.append((both.training, trained.training, torch.is_grad_enabled()))
        return trained(torch.stack(batch)).pow(2).mean()

    items = [torch.randn(2) for _ in range(5)]
    got = validation_loss(both, items, step_fn, batch_size=2)
    with torch.no_grad():
        want = sum(float(trained(torch.stack(items[i:i + 2])).pow(2).mean()) * len(items[i:i + 2])
                   for i in range(0, 5, 2)) / 5
    assert got == pytest.approx(want)
    assert seen == [(False, False, False)] * 3
    assert both.training and trained.training and not frozen.training
