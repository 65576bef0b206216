"""`NASTuner`: keras-tuner's trial loop driving NASNet children, and the search's outputs.

keras-tuner already provides what a NAS run needs around the strategy: the trial loop,
trial bookkeeping on disk, resuming (`overwrite=False`), FAILED/INVALID trials, and
distributed search (a chief serving the oracle over gRPC to workers, configured by
`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`). `NASTuner`
only adds the NAS part: `run_trial` decodes the trial's values into a `Genotype` through
the `SearchSpace`, trains the child with the paper's recipe (`tuner.children`) and
reports its held-out accuracy. Nothing in it bypasses keras-tuner's oracle protocol, so
the distributed mode works unchanged (a worker's oracle is an `OracleClient`).

Written into `<directory>/<project>/` (project = strategy name by default):
    nas_search.json       strategy, search space, child recipe and data of the run;
                          a resume with different settings is refused (mixing rewards
                          of different recipes would corrupt the search)
    trial_*/genotype.json, trial_*/child.json   per trial (next to keras-tuner's trial.json)
    best_genotype.json, best_cells.png          the best architecture found (Figure 4)
    retrain.json, final_genotype.json, final_cells.png   after `retrain_top_k`
and `<directory>/search_curve.png`: best-so-far and top-5 mean vs. trials for every
project in the directory (one line per strategy, as Figure 6 compares RL and RS).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from typing import Any, Callable, Iterable, Mapping

import keras_tuner

from nasnet_keras.checks import check_int
from nasnet_keras.errors import USAGE_EXIT, RunFailed
from nasnet_keras.fileio import write_json
from nasnet_keras.genotype import Genotype, as_genotype
from tuner import history, plots
from tuner.children import ChildConfig, ChildFailedError, train_child
from tuner.distributed import DistributedConfig
from tuner.distributed import role as distributed_role
from tuner.keras_tuner_internals import is_distributed_worker
from tuner.reward_cache import recipe_fingerprint
from tuner.space import SearchSpace
from tuner.tensorboard_logging import SearchBoard

BEST_GENOTYPE_FILE = "best_genotype.json"
BEST_CELLS_FILE = "best_cells.png"
FINAL_GENOTYPE_FILE = "final_genotype.json"
FINAL_CELLS_FILE = "final_cells.png"
RETRAIN_FILE = "retrain.json"
CURVE_FILE = "search_curve.png"
GENOTYPE_FILE = "genotype.json"


class NoChildCompleted(RunFailed):
    """Every child of a search failed: there is no best architecture to report or train further.

    Its exit code is 2, a user fault's: the same settings fail the same way again, and the
    first child's failure (out of memory, a NaN loss, a bad value) says what to change.
    """

    exit_code = USAGE_EXIT


def stopped_by_failures(error: BaseException) -> bool:
    """True for keras-tuner's "Number of consecutive failures exceeded the limit" stop (a RuntimeError)."""
    return isinstance(error, RuntimeError) and "consecutive failures" in str(error)


class NASTuner(keras_tuner.Tuner):
    """Search NASNet cells with any keras-tuner oracle over a `SearchSpace`.

    Args:
        oracle: e.g. `tuner.oracles.make_oracle("ppo" | "random", space, max_trials=...)`.
        child_config: how each child is built and trained (`tuner.children.ChildConfig`).
        search_space: the space whose values the oracle produces; defaults to
            `oracle.search_space`.
        strategy: a label for curves and the default project name ("ppo", "random").
        run_info: anything else that must match on resume (dataset, split, seed...).
        fit_verbose: Keras progress output of each child (0, 1, 2 or "auto").
        log: where the one-line trial summaries go (default `print`).
        distributed: a `tuner.distributed.DistributedConfig` (leases, timeouts, token/TLS)
            for keras-tuner's chief/worker mode; the chief then serves through
            `tuner.distributed.chief` and workers talk through its `ChiefClient`.
        directory, project_name, overwrite, **kwargs: as `keras_tuner.Tuner`.

    Call `search(train, validation)` with unbatched `(image, label)` datasets (from
    `nasnet_keras.data.search_split`).
    """

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        child_config: ChildConfig,
        *,
        search_space: SearchSpace | None = None,
        strategy: str | None = None,
        run_info: Mapping[str, Any] | None = None,
        fit_verbose: int | str = "auto",
        log: Callable[[str], None] = print,
        directory: str | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        distributed=None,
        cost_target=None,
        **kwargs,
    ):
        search_space = search_space if search_space is not None else getattr(oracle, "search_space", None)
        if not isinstance(search_space, SearchSpace):
            raise ValueError(
                "NASTuner needs the SearchSpace whose values the oracle produces: pass `search_space=` or use an "
                f"oracle with a `search_space` attribute. Received: {type(search_space).__name__}"
            )
        if not isinstance(child_config, ChildConfig):
            raise ValueError(f"`child_config` must be a tuner.children.ChildConfig. Received: {child_config!r}")
        self.search_space = search_space
        self.child_config = child_config
        self.strategy = strategy or type(oracle).__name__
        self.fit_verbose = fit_verbose
        self.log = log
        self.search_config = {
            "strategy": self.strategy,
            "search_space": search_space.to_dict(),
            "child_config": child_config.to_dict(),
            "run": dict(run_info or {}),
        }
        # Hardware-aware reward (tuner.cost): part of the recipe, so a resume must match it.
        self.cost_target = cost_target
        if cost_target is not None:
            self.search_config["run"]["cost_target"] = cost_target.to_dict()
        directory = directory or "."
        project_name = project_name or self.strategy
        # Distributed search (tuner.distributed): the chief claims the directory first.
        self.distributed = distributed or DistributedConfig()
        self._chief_lock = self.distributed.claim(directory, project_name) if distributed_role() == "chief" else None
        if not overwrite:
            self._check_resume(os.path.join(str(directory), project_name))
        self._trial_started: dict[str, float] = {}
        self._trial_genotypes: dict[str, Genotype] = {}
        self._trial_scores: dict[str, float] = {}  # a worker's `trial` copy does not see its metrics
        self.report: dict[str, str] = {}
        if hasattr(oracle, "set_recipe"):  # before keras-tuner may start serving the oracle (chief)
            oracle.set_recipe(recipe_fingerprint(self.search_config))
        super().__init__(
            oracle=oracle, hypermodel=None, directory=directory, project_name=project_name,
            overwrite=overwrite, **kwargs,
        )
        if is_distributed_worker():
            self.distributed.attach(self, self.distributed_settings)  # the chief owns the directory's files
        else:
            write_json(os.path.join(self.project_dir, history.SEARCH_CONFIG_FILE), self.search_config,
                       sort_keys=True)
        self.board = SearchBoard(self.project_dir, search_space, self.oracle.objective.name)
        if not is_distributed_worker():  # a worker's oracle is a client: the chief holds the history
            self.board.resume(self.oracle)
        self._trial_params: dict[str, float] = {}

    @property
    def distributed_settings(self) -> dict[str, Any]:
        """What a worker must share with its chief: the search settings but the execution mode."""
        child = {k: v for k, v in self.search_config["child_config"].items() if k != "run_eagerly"}
        return {**self.search_config, "child_config": child}

    def _check_resume(self, project_dir: str) -> None:
        stored = history.read_search_config(project_dir)
        if stored is None:
            return
        differences = []
        for key in ("strategy", "search_space", "run"):
            if stored.get(key) != self.search_config[key]:
                differences.append(f"{key}: stored {stored.get(key)!r}, now {self.search_config[key]!r}")
        stored_child = stored.get("child_config", {})
        for key, value in self.search_config["child_config"].items():
            if key != "run_eagerly" and stored_child.get(key) != value:  # execution mode does not change rewards
                differences.append(f"child_config.{key}: stored {stored_child.get(key)!r}, now {value!r}")
        if differences:
            raise ValueError(
                f"{project_dir} holds a search with other settings, and resuming it would mix rewards of "
                "different recipes: " + "; ".join(differences)
                + ". Resume with the same settings, pass overwrite=True (--overwrite), or use another directory"
            )

    # --- the trial loop ------------------------------------------------------------------
    def search(self, train, validation, verbose: int = 0):
        """Run trials until the oracle stops; then write the report (not on workers).

        `verbose` is keras-tuner's own per-trial display (a table of all 10B values);
        off by default in favour of the one-line summaries. Child progress bars follow
        `fit_verbose`.
        """
        if distributed_role() == "chief":
            self.oracle.verbose = verbose
            self.distributed.serve(self, self.distributed_settings, log=self.log)
        else:
            super().search(train, validation, verbose=verbose)
        if not is_distributed_worker():
            if hasattr(self.oracle, "num_cache_hits"):
                self.log(f"Search done: {len(self.oracle.trials)} children trained, "
                         f"{self.oracle.num_cache_hits} rewards from the cache (repeats not trained again)")
            self.report = self.write_report()
        return self.report

    def run_trial(self, trial, train, validation, **kwargs):
        genotype = self.search_space.decode(trial.hyperparameters.values)
        self._trial_genotypes[trial.trial_id] = genotype
        genotype.save(os.path.join(self.get_trial_dir(trial.trial_id), GENOTYPE_FILE))
        cost = self.cost_target.final_cost(genotype) if self.cost_target is not None else None
        result = train_child(genotype, train, validation, self.child_config, verbose=self.fit_verbose,
                             callbacks=self.board.child_callbacks(trial.trial_id))
        self._trial_scores[trial.trial_id] = result.accuracy
        self._trial_params[trial.trial_id] = result.params
        metrics = result.metrics(self.oracle.objective.name)
        if cost is not None:  # the objective becomes accuracy x (cost / target)^w
            metrics.update(cost, accuracy=result.accuracy)
            metrics[self.oracle.objective.name] = self.cost_target.reward(result.accuracy, cost)
        return metrics

    def on_trial_begin(self, trial):
        self._trial_started[trial.trial_id] = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        seconds = time.perf_counter() - self._trial_started.pop(trial.trial_id, time.perf_counter())
        genotype = self._trial_genotypes.pop(trial.trial_id, None)
        status = str(trial.status)
        reason = self._failure_reason(trial) if status != "COMPLETED" else None
        score = self._trial_scores.pop(trial.trial_id, None) if status == "COMPLETED" else None
        write_json(
            os.path.join(self.get_trial_dir(trial.trial_id), history.CHILD_FILE),
            {"genotype_id": genotype.id if genotype else None, "status": status, "score": score,
             "seconds": round(seconds, 3), "reason": reason},
            sort_keys=True,
        )
        total = self.oracle.max_trials
        head = f"Trial {trial.trial_id}" + (f"/{total}" if total else "")
        parts = [head, f"genotype {genotype.id if genotype else '-'}"]
        if score is not None:
            parts.append(f"{self.oracle.objective.name} {score:.4f}")
        parts.append(f"{seconds:.1f} s")
        parts.append(status if reason is None else f"{status} ({reason})")
        self.log(" | ".join(parts))
        super().on_trial_end(trial)  # the oracle scores it (and may stop after repeated failures)
        self.board.trial_end(self.oracle, trial.trial_id, trial.hyperparameters.values,
                             genotype.id if genotype else None, score, self._trial_params.pop(trial.trial_id, None))

    @staticmethod
    def _failure_reason(trial) -> str:
        # keras-tuner stores the traceback; its last line is "module.ErrorType: message".
        lines = [line.strip() for line in (trial.message or "").strip().splitlines() if line.strip()]
        return lines[-1][:240] if lines else "no message"

    def no_child_completed(self, stop: BaseException | None = None) -> NoChildCompleted:
        """The error for a search in which no child completed: one line with the count, why the
        search stopped and the first failed child's reason (its last traceback line)."""
        trials = [self.oracle.trials[trial_id] for trial_id in getattr(self.oracle, "end_order", [])
                  if trial_id in self.oracle.trials] or list(self.oracle.trials.values())
        failed = [trial for trial in trials if str(trial.status) == "FAILED"]
        stopped = f" (keras-tuner: {str(stop).splitlines()[0].strip()})" if stop is not None else ""
        first = (f"; the first, trial {failed[0].trial_id}, failed with: {self._failure_reason(failed[0])}"
                 if failed else "")
        return NoChildCompleted(f"no child completed: {len(failed)} of {len(trials)} children failed, so the search "
                                f"stopped{stopped}{first}")

    def load_model(self, trial):
        raise NotImplementedError(
            "Search children are not saved (thousands of them would fill the disk). Rebuild one with "
            "tuner.children.train_child(genotype, ..., keep_model=True), the genotype from best_genotypes()"
        )

    # --- results -------------------------------------------------------------------------
    def best_genotypes(self, num: int = 1) -> list[tuple[Genotype, float, str]]:
        """Up to `num` *unique* architectures, best first: (genotype, score, trial_id)."""
        trials = self.oracle.get_best_trials(num_trials=max(num, len(getattr(self.oracle, "trials", {})) or 10_000))
        seen, best = set(), []
        for trial in trials:
            if trial.score is None or not math.isfinite(trial.score):
                continue
            genotype = self.search_space.decode(trial.hyperparameters.values)
            if genotype.id in seen:
                continue
            seen.add(genotype.id)
            best.append((genotype, float(trial.score), trial.trial_id))
            if len(best) == num:
                break
        return best

    def write_report(self) -> dict[str, str]:
        """Best genotype JSON and picture, and the shared search-curve PNG; returns the paths."""
        paths: dict[str, str] = {}
        best = self.best_genotypes(1)
        if best:
            genotype, score, trial_id = best[0]
            named = Genotype(genotype.normal, genotype.reduction, name=f"{self.strategy} best (trial {trial_id})")
            paths["best_genotype"] = os.path.join(self.project_dir, BEST_GENOTYPE_FILE)
            named.save(paths["best_genotype"])
            paths["best_cells"] = plots.plot_genotype(
                named, os.path.join(self.project_dir, BEST_CELLS_FILE),
                title=f"Best cells of the {self.strategy} search: trial {trial_id}, "
                      f"{self.oracle.objective.name} {score:.4f} [{genotype.id}]",
            )
        else:
            self.log("No trial completed: no best genotype to write")
        paths["search_curve"] = write_search_curve(self.directory)
        return paths

    # --- the paper's final stage ---------------------------------------------------------
    def retrain_top_k(
        self,
        train,
        validation,
        k: int,
        epochs: int,
        *,
        extra_genotypes: Iterable = (),
        config: ChildConfig | None = None,
    ) -> list[dict[str, Any]]:
        """Retrain the `k` best unique architectures (plus `extra_genotypes`) for `epochs`.

        The paper retrains its top 250 children "to convergence" and keeps the best
        (App. A.3): the 20-epoch search reward is noisy, so a longer run separates the
        leaders. Selection uses the same held-out split, never the test split. Results
        are appended to `retrain.json` as each candidate finishes, so an interrupted
        stage resumes where it stopped. Writes `final_genotype.json` and `final_cells.png`.
        Returns one record per candidate, best first.
        """
        check_int("k", k, minimum=0, hint=" (--top-k)")
        check_int("epochs", epochs, minimum=1, hint=" (--final-epochs)")
        config = (config or self.child_config).replace(epochs=epochs)
        recipe = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
        candidates: list[tuple[Genotype, str, float | None]] = [
            (genotype, f"trial {trial_id}", score) for genotype, score, trial_id in self.best_genotypes(k)
        ] if k else []
        for extra in extra_genotypes:
            genotype = as_genotype(extra)
            candidates.append((genotype, genotype.name or "given", None))
        unique: dict[str, tuple[Genotype, str, float | None]] = {}
        for genotype, source, score in candidates:
            unique.setdefault(genotype.id, (genotype, source, score))
        path = os.path.join(self.project_dir, RETRAIN_FILE)
        done: dict[str, dict] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                done = {entry["key"]: entry for entry in json.load(f)["results"]}
        results = []
        for i, (genotype, source, search_score) in enumerate(unique.values(), 1):
            key = f"{genotype.id}@{recipe}"
            if key in done:
                results.append(done[key])
                self.log(f"Retrain {i}/{len(unique)} | genotype {genotype.id} | already done: "
                         f"{done[key]['status']} {done[key].get('accuracy')}")
                continue
            entry = {"key": key, "genotype_id": genotype.id, "source": source, "search_score": search_score,
                     "epochs": epochs, "genotype": genotype.to_dict()}
            try:
                result = train_child(genotype, train, validation, config, verbose=self.fit_verbose)
                entry.update(status="COMPLETED", accuracy=result.accuracy, loss=result.loss, params=result.params,
                             seconds=round(result.seconds, 3))
            except ChildFailedError as error:
                entry.update(status="FAILED", accuracy=None, reason=str(error))
            results.append(entry)
            done[key] = entry
            write_json(path, {"recipe": config.to_dict(), "results": list(done.values())}, sort_keys=True)
            accuracy = f"{entry['accuracy']:.4f}" if entry["accuracy"] is not None else "-"
            self.log(f"Retrain {i}/{len(unique)} | genotype {genotype.id} ({source}) | "
                     f"{self.oracle.objective.name} {accuracy} | {entry.get('seconds', 0):.1f} s | {entry['status']}")
        completed = sorted((r for r in results if r["status"] == "COMPLETED"), key=lambda r: -r["accuracy"])
        if completed:
            winner = completed[0]
            final = Genotype.from_dict({**winner["genotype"], "name": f"final ({winner['source']})"})
            final.save(os.path.join(self.project_dir, FINAL_GENOTYPE_FILE))
            plots.plot_genotype(
                final, os.path.join(self.project_dir, FINAL_CELLS_FILE),
                title=f"Final cells after retraining {len(unique)} candidates for {epochs} epochs: "
                      f"{self.oracle.objective.name} {winner['accuracy']:.4f} [{final.id}]",
            )
            self.report["final_genotype"] = os.path.join(self.project_dir, FINAL_GENOTYPE_FILE)
            self.report["final_cells"] = os.path.join(self.project_dir, FINAL_CELLS_FILE)
        return completed + [r for r in results if r["status"] != "COMPLETED"]


def write_search_curve(directory: str, path: str | None = None, ks: Iterable[int] = (1, 5)) -> str:
    """Draw every NAS project in `directory` (one per strategy) into one Figure-6 PNG."""
    curves = {label: history.curves(history.read_trials(project_dir), ks)
              for label, project_dir in history.find_projects(str(directory)).items()}
    return plots.plot_search_curves(curves, path or os.path.join(str(directory), CURVE_FILE))
