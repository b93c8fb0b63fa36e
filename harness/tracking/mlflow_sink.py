"""MLflow: one parent run per matrix run, one nested child run per process (cell, repeat, attempt).

The store is a SQLite file in the run dir (`sqlite:///<out>/mlflow.db`, artifacts in <out>/mlartifacts)
unless --tracking-uri or MLFLOW_TRACKING_URI names another. Child runs carry the spec as params, the
versions, commit, CPU, status and stability as tags, the curves and numbers of `record` as metrics, and
log.txt and model.onnx (with its .data file) as artifacts. A child is tagged with its process key and
never logged twice, so the family envs of `tox -m bench` and `--resume` add to the same parent run.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from harness.tracking import record

EXPERIMENT = "dlrosetta"
KEY_TAG = "dlrosetta.key"  # set last: a child cut short is logged again
FINISHED = {"ok": "FINISHED", "not_applicable": "FINISHED"}  # every other status ends FAILED


class Sink:
    def __init__(self, out: Path, uri: str | None):
        from mlflow import MlflowClient

        for noisy in ("mlflow", "alembic"):  # the store's set-up notes would interleave with progress lines
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.out = out
        self.uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
        self.client_class = MlflowClient
        self.client = self.parent = self.experiment_id = None
        self.logged: set[str] = set()
        self.env: dict = {}
        if self.uri:  # another store: reach it now, before any cell runs (the run dir's store comes later)
            self._connect()

    def _connect(self) -> None:
        uri = self.uri or f"sqlite:///{(self.out / 'mlflow.db').resolve()}"
        self.client = self.client_class(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            self.experiment_id = experiment.experiment_id
        else:
            artifacts = None if self.uri else (self.out / "mlartifacts").resolve().as_uri()
            self.experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=artifacts)

    def start(self, env: dict, earlier: list[dict]) -> None:
        from mlflow.entities import RunTag

        if self.client is None:
            self._connect()
        self.env = env
        run_id = env.get("run_id")
        found = self.client.search_runs([self.experiment_id], f"tags.`dlrosetta.run_id` = '{run_id}' and "
                                        f"tags.`dlrosetta.kind` = 'matrix'", max_results=1)
        if found:
            self.parent = found[0].info.run_id
            self.client.update_run(self.parent, status="RUNNING")
        else:
            self.parent = self.client.create_run(self.experiment_id, run_name=f"dlrosetta {run_id}",
                                                 tags={"dlrosetta.kind": "matrix"}).info.run_id
        self.client.log_batch(self.parent, tags=[RunTag(k, v) for k, v in record.run_tags(env).items()])
        self.logged = {run.data.tags.get(KEY_TAG) for run in self._children()}
        for row in earlier:
            self.log(row)

    def _children(self):
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                           max_results=1000, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def log(self, row: dict) -> None:
        from mlflow.entities import Metric, Param, RunTag

        if not record.tracked(row) or record.key(row) in self.logged:
            return
        start_ms = int(record.start_s(row) * 1000)
        tags = {"mlflow.parentRunId": self.parent, **record.tags(row, self.env)}
        child = self.client.create_run(self.experiment_id, start_time=start_ms, tags=tags,
                                       run_name=record.name(row)).info.run_id
        metrics = [Metric(tag, value, start_ms + int(seconds * 1000), step)
                   for tag, points in record.series(row, self.out).items() for step, value, seconds in points]
        metrics += [Metric(tag, value, start_ms, 0) for tag, value in record.summary(row).items()]
        params = [Param(k, str(v)) for k, v in record.params(row, self.env).items()]
        self.client.log_batch(child, metrics=metrics, params=params)
        for path in record.artifacts(row, self.out):
            self.client.log_artifact(child, str(path))
        wall_s = (row.get("timing") or {}).get("cell_wall_s") or 0.0
        self.client.set_terminated(child, FINISHED.get(row.get("status"), "FAILED"),
                                   end_time=start_ms + int(wall_s * 1000))
        self.client.log_batch(child, tags=[RunTag(KEY_TAG, record.key(row))])
        self.logged.add(record.key(row))

    def close(self) -> None:
        if self.parent is None:
            return
        for name in ("environment.json", "schedule.jsonl"):
            if (self.out / name).is_file():
                self.client.log_artifact(self.parent, str(self.out / name))
        self.client.set_terminated(self.parent, "FINISHED")
