"""Experiment tracking: TensorBoard event files written next to a training step's outputs.

Every training step writes `tensorboard/` into its step folder (so `tensorboard --logdir <store>/runs/<id>`
shows every step and grid child, named by its folder): the training loss and each parameter group's
learning rate per optimizer step, the validation metrics at the end, and the step's identity (run, step,
learning rates) as text. The event files travel with each checkpoint, so a killed step resumes its curve.
Written with torch.utils.tensorboard (the tensorboard package's format), read back by EventAccumulator.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TB_DIR = "tensorboard"


class Tracker:
    """A SummaryWriter over `folder`; only the main rank writes."""

    def __init__(self, folder: Path, *, about: dict | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.folder))
        if about:
            self._writer.add_text("about", "```\n" + json.dumps(about, indent=2, sort_keys=True) + "\n```", 0)

    def step(self, step: int, loss: float, param_groups) -> None:
        self._writer.add_scalar("train/loss", loss, step)
        for i, g in enumerate(param_groups):
            self._writer.add_scalar(f"lr/{g.get('name', i)}", g["lr"], step)

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{prefix}/{key}", value, step)

    def snapshot(self, dest: Path) -> None:
        """Copy the event files written so far into `dest` (a checkpoint folder)."""
        self._writer.flush()
        shutil.copytree(self.folder, dest, dirs_exist_ok=True)

    def restore(self, src: Path) -> None:
        """Put a checkpoint's event files back (their names differ from this attempt's own file)."""
        if src.is_dir():
            shutil.copytree(src, self.folder, dirs_exist_ok=True)

    def close(self) -> None:
        self._writer.close()
