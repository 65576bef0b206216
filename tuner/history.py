"""What a search did, read back from its directory, and the paper's Figure 6 statistics.

The record of a search is what keras-tuner already writes (`<project>/trial_*/trial.json`:
values, status, score), so the curves can be drawn by any process - the chief of a
distributed search, a later `nasnet search` that resumes, a benchmark - without the
oracle object. Architectures are identified by `Genotype.id`, decoded from the trial's
values through the project's search space; Figure 6 counts *unique* models, so a
genotype sampled twice contributes its best score once.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
from typing import Iterable, Sequence

from tuner.space import SearchSpace

# Written by NASTuner next to keras-tuner's files: strategy, search space, child recipe, data.
SEARCH_CONFIG_FILE = "nas_search.json"
# Per trial, next to keras-tuner's trial.json: genotype id, status, seconds, failure reason.
CHILD_FILE = "child.json"


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    genotype_id: str | None
    status: str
    score: float | None
    seconds: float | None = None
    reason: str | None = None

    @property
    def scored(self) -> bool:
        return self.status == "COMPLETED" and self.score is not None and math.isfinite(self.score)


def read_search_config(project_dir: str) -> dict | None:
    path = os.path.join(project_dir, SEARCH_CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _trial_number(trial_id: str) -> tuple:
    return (0, int(trial_id)) if str(trial_id).isdigit() else (1, str(trial_id))


def read_trials(project_dir: str, search_space: SearchSpace | None = None) -> list[TrialRecord]:
    """All trials of one keras-tuner project, in sampling order (trial id order)."""
    if search_space is None:
        config = read_search_config(project_dir)
        if config is not None:
            search_space = SearchSpace.from_dict(config["search_space"])
    records = []
    for path in glob.glob(os.path.join(project_dir, "trial_*", "trial.json")):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        values = raw.get("hyperparameters", {}).get("values", {})
        genotype_id = None
        if search_space is not None:
            try:
                genotype_id = search_space.decode(values).id
            except ValueError:
                genotype_id = None
        child = {}
        child_path = os.path.join(os.path.dirname(path), CHILD_FILE)
        if os.path.exists(child_path):
            with open(child_path, encoding="utf-8") as f:
                child = json.load(f)
        score = raw.get("score")
        records.append(
            TrialRecord(
                trial_id=str(raw["trial_id"]),
                genotype_id=genotype_id or child.get("genotype_id"),
                status=str(raw.get("status")),
                score=None if score is None else float(score),
                seconds=child.get("seconds"),
                reason=child.get("reason"),
            )
        )
    records.sort(key=lambda r: _trial_number(r.trial_id))
    return records


def find_projects(directory: str) -> dict[str, str]:
    """`{label: project_dir}` for every NAS project (one per strategy) under `directory`."""
    projects = {}
    for config_path in sorted(glob.glob(os.path.join(directory, "*", SEARCH_CONFIG_FILE))):
        project_dir = os.path.dirname(config_path)
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        label = config.get("strategy") or os.path.basename(project_dir)
        if label in projects:
            label = os.path.basename(project_dir)
        projects[label] = project_dir
    return projects


def best_so_far(records: Sequence[TrialRecord], k: int) -> list[float]:
    """Mean of the top-`k` unique architectures among the first n trials, for every n.

    NaN until `k` distinct architectures have been scored (a "top-5" of three models
    would not be the same statistic). `k=1` is the best-so-far curve.
    """
    # `top` holds the k best (key -> best score). A key's best only grows, so a key left
    # out of `top` never outranks its members later: O(n k) even for the paper's 20,000.
    top: dict[str, float] = {}
    curve = []
    for record in records:
        if record.scored:
            key = record.genotype_id or f"trial-{record.trial_id}"
            if key in top:
                top[key] = max(top[key], record.score)
            elif len(top) < k:
                top[key] = record.score
            else:
                worst = min(top, key=top.get)
                if record.score > top[worst]:
                    del top[worst]
                    top[key] = record.score
        curve.append(sum(top.values()) / k if len(top) == k else math.nan)
    return curve


def curves(records: Sequence[TrialRecord], ks: Iterable[int] = (1, 5)) -> dict[int, list[float]]:
    return {k: best_so_far(records, k) for k in ks}
