"""The in-memory domain's _forcemerge (waited for, or a background task polled with _tasks) and k-NN warm-up."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from tastebud_sam_local.opensearch_indices import IndexAndAliasApi
from tastebud_sam_local.opensearch_replies import Reply, json_reply, opensearch_error


class ForceMergeApi(IndexAndAliasApi):
    """``_forcemerge``, ``_forcemerge?wait_for_completion=false`` with ``GET _tasks`` / ``GET _tasks/<id>``, and
    ``_plugins/_knn/warmup``."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: dict[str, dict[str, Any]] = {}  # background tasks (force merges) by "<node>:<number>"
        self.merge_polls = 1  # GET _tasks/<id> answers completed=false this many times, then true

    def _shards_reply(self, name: str, query: dict[str, list[str]]) -> Reply:
        """_forcemerge and k-NN warm-up both answer with the shard summary of the work done."""
        if name not in self.indices:
            return self._missing(name)
        settings = self.indices[name]["settings"]
        total = int(settings.get("number_of_shards", 1)) * (1 + int(settings.get("number_of_replicas", 1)))
        return json_reply(200, {"_shards": {"total": total, "successful": total, "failed": 0}})

    def _start_task(self, name: str, query: dict[str, list[str]]) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        task_id = f"oTUltX4IQMOUUVeiohTt8A:{1000 + len(self.tasks)}"
        segments = query.get("max_num_segments", ["-1"])[0]
        self.tasks[task_id] = {"index": name, "reads": 0, "description": (
            f"Force-merge indices [{name}], maxSegments[{segments}], onlyExpungeDeletes[false], flush[true], "
            "primaryOnly[false]")}
        return json_reply(200, {"task": task_id})

    def _task_info(self, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
        node, number = task_id.split(":")
        return {"node": node, "id": int(number), "type": "transport", "action": "indices:admin/forcemerge",
                "description": task["description"], "start_time_in_millis": self.clock_ms,
                "running_time_in_nanos": 1_000_000, "cancellable": False, "cancelled": False, "headers": {}}

    def _list_tasks(self, query: dict[str, list[str]]) -> Reply:
        pattern = query.get("actions", ["*"])[0]
        running = {task_id: self._task_info(task_id, task) for task_id, task in self.tasks.items()
                   if task["reads"] < self.merge_polls and fnmatch.fnmatchcase("indices:admin/forcemerge", pattern)}
        nodes = {"oTUltX4IQMOUUVeiohTt8A": {"name": "data-node-1", "roles": ["data", "ingest"], "tasks": running}}
        return json_reply(200, {"nodes": nodes if running else {}})

    def _get_task(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return opensearch_error(404, "resource_not_found_exception",
                                    f"task [{task_id}] isn't running and hasn't stored its results")
        task["reads"] += 1
        if task["reads"] <= self.merge_polls:
            return json_reply(200, {"completed": False, "task": self._task_info(task_id, task)})
        _, _, merged = self._shards_reply(task["index"], {})
        return json_reply(200, {"completed": True, "task": self._task_info(task_id, task),
                                "response": json.loads(merged)})
