"""TensorBoard backend (``tracker: tensorboard``; ``pip install "scaling[tensorboard]"``).

Event files in ``RUN_DIR/tensorboard/``, one scalar per metric at the row's step, written with
TensorBoard's own event writer (no TensorFlow); ``tensorboard --logdir runs/<sweep>`` shows every
run of a sweep, each under its run id. The summary's numbers are written at the final step under
``summary/``. A resumed run appends a new event file; TensorBoard keeps the latest value per step.
"""

from __future__ import annotations

import time
from typing import Optional

from scaling.errors import ScalingError
from scaling.trackers.base import RunContext, scalars

EVENTS_DIR = "tensorboard"


class TensorboardTracker:
    def __init__(self, ctx: RunContext):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise ScalingError('tracker: tensorboard needs tensorboard: pip install "scaling[tensorboard]"') from None
        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self.directory = ctx.run_dir / EVENTS_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.writer = EventFileWriter(str(self.directory))
        self.last_step = 0

    def _scalars(self, step: int, values: dict) -> None:
        summary = self._summary(value=[self._summary.Value(tag=k, simple_value=v) for k, v in values.items()])
        self.writer.add_event(self._event(step=step, wall_time=time.time(), summary=summary))

    def log(self, rows: list) -> None:
        for row in rows:
            self.last_step = int(row["step"])
            self._scalars(self.last_step, scalars(row))
        self.writer.flush()

    def finish(self, summary: Optional[dict]) -> None:
        if summary is not None:
            values = {f"summary/{k}": v for k, v in scalars(summary).items()}
            self._scalars(int(summary.get("final_step") or self.last_step), values)
        self.writer.close()
