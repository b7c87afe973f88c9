"""Experiment tracking: TensorBoard event files written next to a training step's outputs.

Every training step writes `tensorboard/` into its step folder (so `tensorboard --logdir <store>/runs/<id>`
shows every step and grid child, named by its folder): the training loss and each parameter group's
learning rate per optimizer step, the validation metrics at the end, and the step's identity (run, step,
learning rates) as text. The event files travel with each checkpoint, so a killed step resumes its curve.
Written with torch.utils.tensorboard (the tensorboard package's format), read back by EventAccumulator.

With the run setting `track: mlflow` (`--track mlflow`) the same scalars also go to MLflow (`MlflowTracker`):
the server of MLFLOW_TRACKING_URI (mlflow's own default without it), the experiment MLFLOW_EXPERIMENT_NAME
(default `rag-jobs`), one MLflow run per training step tagged with the rag-jobs run and step, its learning
rates as params; a resumed step continues its unfinished MLflow run. Tracking never fails a training step: an
MLflow error is logged once and MLflow is off for the rest of the step (the TensorBoard events still hold
the curve).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from rag_jobs.errors import ConfigError

TB_DIR = "tensorboard"
TRACK_CHOICES = ("tensorboard", "mlflow")
TOKEN_FILE_ENV = "RAG_JOBS_MLFLOW_TOKEN_FILE"  # a mounted Secret: MLflow itself reads its token from env only
DEFAULT_EXPERIMENT = "rag-jobs"
log = logging.getLogger("rag_jobs.tracking")


def require_mlflow() -> None:
    """`--track mlflow` without the mlflow client installed: a config error naming the package."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError("track=mlflow needs the MLflow client: pip install 'rag-jobs[mlflow]' (mlflow-skinny)")


def check_mlflow_server() -> None:
    """Before a local run with track=mlflow: the client is installed and its tracking store answers (a step
    would only warn and go on without it)."""
    require_mlflow()
    from mlflow import MlflowClient, get_tracking_uri

    try:
        MlflowClient().search_experiments(max_results=1)
    except Exception as exc:
        raise ConfigError(f"track=mlflow: the MLflow tracking store {get_tracking_uri()!r} does not answer "
                          f"(set MLFLOW_TRACKING_URI): {type(exc).__name__}: {str(exc)[:300]}") from exc


def _flat(about: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in about.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class MlflowTracker:
    """One MLflow run per training step (MlflowClient: no process-global active run)."""

    def __init__(self, about: dict):
        from mlflow import MlflowClient

        token_file = os.environ.get(TOKEN_FILE_ENV)
        if token_file and not os.environ.get("MLFLOW_TRACKING_TOKEN"):
            os.environ["MLFLOW_TRACKING_TOKEN"] = Path(token_file).read_text().strip()  # this step process only
        self._client = MlflowClient()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self._client.create_experiment(name)
            except Exception:  # created meanwhile by another grid child
                experiment_id = self._client.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        tags = {"rag_jobs.run": str(about.get("run")), "rag_jobs.step": str(about.get("step")),
                "rag_jobs.kind": str(about.get("kind"))}
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items() if k != "rag_jobs.kind")
        found = self._client.search_runs([experiment_id], filter_string=query, max_results=1,
                                         order_by=["attributes.start_time DESC"])
        if found and found[0].info.status != "FINISHED":  # a resumed step continues its curve
            self.run_id = found[0].info.run_id
        else:
            self.run_id = self._client.create_run(experiment_id, tags=tags,
                                                  run_name=str(about.get("step"))).info.run_id
            from mlflow.entities import Param

            self._client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in _flat(about).items()])

    def log(self, values: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def finish(self, status: str = "FINISHED") -> None:
        self._client.set_terminated(self.run_id, status)


class Tracker:
    """A SummaryWriter over `folder`, and MLflow with `track="mlflow"`; only the main rank writes."""

    def __init__(self, folder: Path, *, about: dict | None = None, track: str = "tensorboard"):
        from torch.utils.tensorboard import SummaryWriter

        if track not in TRACK_CHOICES:
            raise ConfigError(f"track={track!r} must be one of {', '.join(TRACK_CHOICES)}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.folder))
        if about:
            self._writer.add_text("about", "```\n" + json.dumps(about, indent=2, sort_keys=True) + "\n```", 0)
        self._mlflow: MlflowTracker | None = None
        if track == "mlflow":
            require_mlflow()
            self._mlflow_call(lambda: setattr(self, "_mlflow", MlflowTracker(about or {})))

    def _mlflow_call(self, fn) -> None:
        try:
            fn()
        except Exception as exc:  # never fail training over tracking; TensorBoard still has the curve
            log.warning("MLflow tracking is off for this step: %s: %s", type(exc).__name__, exc)
            self._mlflow = None

    def _log(self, values: dict, step: int) -> None:
        for key, value in values.items():
            self._writer.add_scalar(key, value, step)
        if self._mlflow is not None:
            self._mlflow_call(lambda: self._mlflow.log(values, step))

    def step(self, step: int, loss: float, param_groups) -> None:
        values = {"train/loss": loss}
        for i, g in enumerate(param_groups):
            values[f"lr/{g.get('name', i)}"] = g["lr"]
        self._log(values, step)

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        self._log({f"{prefix}/{k}": v for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}, step)

    def history(self, tag: str) -> list[tuple[int, float]]:
        """(step, value) of one scalar over every attempt's event files (a resumed step's earlier points too)."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        self._writer.flush()
        out: dict[int, float] = {}
        for events in sorted(self.folder.glob("events.out.tfevents.*")):  # by creation time: a later attempt wins
            acc = EventAccumulator(str(events), size_guidance={"scalars": 0})  # 0: every point, not a sample
            acc.Reload()
            if tag in acc.Tags()["scalars"]:
                out.update({e.step: e.value for e in acc.Scalars(tag)})
        return sorted(out.items())

    def snapshot(self, dest: Path) -> None:
        """Copy the event files written so far into `dest` (a checkpoint folder)."""
        self._writer.flush()
        shutil.copytree(self.folder, dest, dirs_exist_ok=True)

    def restore(self, src: Path) -> None:
        """Put a checkpoint's event files back (their names differ from this attempt's own file)."""
        if src.is_dir():
            shutil.copytree(src, self.folder, dirs_exist_ok=True)

    def close(self, *, failed: bool = False) -> None:
        """Flush the events; the MLflow run ends FINISHED, or FAILED (a later attempt resumes it)."""
        self._writer.close()
        if self._mlflow is not None:
            mlflow_run = self._mlflow
            self._mlflow_call(lambda: mlflow_run.finish("FAILED" if failed else "FINISHED"))
            self._mlflow = None
