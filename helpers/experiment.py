"""An experiment from one declaration of its dataset (`DatasetSpec`): its config (the common keys, the
dataset's own and what differs) and its standard commands — train (the default), evaluate_only,
model_speed_test, test_loaders and save_logits. An `ex_*.py` declares the spec, adds its named configs and
launches (`helpers.launch`)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from sacred import Experiment, Ingredient
from sacred.utils import ConfigAddedError, SacredError
from torch.utils.data import DataLoader, Dataset, Sampler

from helpers.cluster import peer_failures_in_one_line
from helpers.common_config import COMMON_KEYS, DATASET_KEYS
from helpers.config_checks import ConfigError, check_config
from helpers.config_keys import Derived, Key, KeyTable, SacredDefaults, leaf_keys, nearest_keys
from helpers.data import DataOptions
from helpers.distillation import check_teachers, distilled, teacher_targets
from helpers.launch import launch  # noqa: F401  (the scripts' entry point)
from helpers.loaders import eval_subset, evaluation_loader, loader_options, training_loader
from helpers.logits import CHUNK_ROWS, LogitsSources, save_logits as save_logits_procedure
from helpers.procedures import build_module, describe_batch, evaluate, speed_test, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """A set the commands score: the `basedataset` key of its file, the `datasets.<loader>` entry that batches
    it, its metric prefix ("" when it is the dataset's one evaluation set), and whether
    `basedataset.eval_subset` restricts it."""

    file_key: str
    loader: str
    prefix: str = ""
    restricted: bool = True


def _no_problems(config: Mapping, training: bool) -> list[str]:
    return []


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the standard commands need to know about one dataset, declared once.

    name: the experiment's name (runs/<name>/). task: a `helpers.tasks` object, or config -> task.
    n_classes: its classes (or config -> classes; None: unknown yet). dataset_keys / dataset_overrides:
    its own `basedataset` keys (its files first) and the common ones' defaults that differ; keys / overrides:
    the same for the top level (a nested dict, e.g. {"lr": 1e-5, "trainer": {"max_epochs": 10}}).
    training_files(config): the `basedataset` keys of the training files, in the order the training set
    concatenates them (distillation reads one teacher file per training file). training_set(config,
    options): the training set, or (set, sampler). evaluation_set(config, path, options, whole_file): an
    evaluation set over a file (`whole_file`: every clip, for save_logits). validation / after_training /
    evaluated(config): the `Split`s validated every epoch / that score the best checkpoint after training /
    that evaluate_only scores. logits_files: the keys save_logits may read, batched by `logits_loader`.
    shuffle: the training loader's order when `datasets.training.shuffle` is None. teacher_activation:
    "sigmoid" | "softmax" (or config -> one). check(config, training): the dataset's own problems.
    inputs(config, files): the (files, folders) a command reads, from the split files it names.
    prepare(config): work after the checks and before any loader (ESC-50: convert upstream's layout).
    """

    name: str
    task: Any
    n_classes: int | Callable[[Mapping], int | None]
    training_files: Callable[[Mapping], Sequence[str]]
    training_set: Callable[[Mapping, DataOptions], Dataset | tuple[Dataset, Sampler]]
    evaluation_set: Callable[[Mapping, str, DataOptions, bool], Dataset]
    validation: Callable[[Mapping], Sequence[Split]]
    evaluated: Callable[[Mapping], Sequence[Split]]
    logits_files: Sequence[str]
    logits_loader: str
    train_doc: str
    evaluated_on: str
    after_training: Callable[[Mapping], Sequence[Split]] = lambda config: ()
    dataset_keys: Sequence[Key] = ()
    dataset_overrides: Mapping = field(default_factory=dict)
    keys: Sequence[Key] = ()
    overrides: Mapping = field(default_factory=dict)
    shuffle: bool = True
    teacher_activation: str | Callable[[Mapping], str] = "sigmoid"
    check: Callable[[Mapping, bool], list[str]] = _no_problems
    inputs: Callable[[Mapping, Mapping[str, str]], tuple[Mapping[str, str], Mapping[str, str]]] | None = None
    prepare: Callable[[Mapping], None] | None = None

    @property
    def key_table(self) -> KeyTable:
        return COMMON_KEYS.extended(self.keys, self.overrides)

    @property
    def dataset_key_table(self) -> KeyTable:
        return DATASET_KEYS.extended(self.dataset_keys, self.dataset_overrides)

    def task_for(self, config: Mapping):
        return self.task(config) if callable(self.task) else self.task

    def classes(self, config: Mapping) -> int | None:
        return self.n_classes(config) if callable(self.n_classes) else self.n_classes

    def training_paths(self, config: Mapping) -> list[str]:
        return [config["basedataset"][key] for key in self.training_files(config)]

    def checked(self, config: Mapping, training: bool = True, with_files: bool = True) -> None:
        """Every problem of the config for a command (training or not), or ConfigError before any work."""
        own = self.check(config, training)
        if own:
            raise ConfigError("invalid config:\n  " + "\n  ".join(own))
        files = folders = None
        if with_files:
            splits = [*self.validation(config), *self.after_training(config)] if training else self.evaluated(config)
            keys = [*(self.training_files(config) if training else ()), *(split.file_key for split in splits)]
            files = {f"basedataset.{key}": config["basedataset"][key] for key in dict.fromkeys(keys)}
            files, folders = self.inputs(config, files) if self.inputs else (files, {})
        check_config(config, n_classes=self.classes(config), training=training, files=files, folders=folders,
                     keys=self.key_table, dataset_keys=self.dataset_key_table)

    def ready(self, config: Mapping, training: bool = True, with_files: bool = True) -> None:
        """`checked`, then the dataset's `prepare`: what a command does before it reads any data."""
        self.checked(config, training, with_files)
        if self.prepare:
            self.prepare(config)


def in_base_dir(relative: str) -> Derived:
    """A file key's default: `relative` under `basedataset.base_dir`."""
    return Derived(lambda config: config["base_dir"] + relative, f'base_dir + "{relative}"')


def from_basedataset(compute: Callable[[Mapping], Any], text: str) -> Derived:
    """A top-level key's default computed from the `basedataset` config (e.g. masks scaled by its clip length)."""
    return Derived(lambda config: compute(config["basedataset"]), text)


def data_options(config: Mapping, **changes) -> DataOptions:
    """The `basedataset` decoding and augmentation settings as one object, with `changes`."""
    return DataOptions.from_config(config["basedataset"], **changes)


class PaSSTExperiment(Experiment):
    """A sacred Experiment whose unknown config keys are refused with the nearest valid names."""

    def _create_run(self, command_name=None, config_updates=None, named_configs=(), *args, **kwargs):
        try:
            return super()._create_run(command_name, config_updates, named_configs, *args, **kwargs)
        except ConfigAddedError as error:
            unknown, updates = [], copy.deepcopy(dict(config_updates or {}))
            while True:  # collect every unknown key, then the valid ones from the config without them
                names = error.__conflicting_configs__
                unknown += [names] if isinstance(names, str) else list(names)
                for name in unknown:
                    _drop(updates, name)
                try:
                    run = super()._create_run(command_name, updates, named_configs, *args, **kwargs)
                    break
                except ConfigAddedError as again:
                    error = again
            valid = leaf_keys(run.config)
            lines = []
            for name in dict.fromkeys(unknown):
                near = nearest_keys(name, valid)
                lines.append(f"{name}: not a config key" + (f"; did you mean {' or '.join(near)}?" if near else ""))
            raise UnknownConfigKey("unknown config key(s) (print_config lists every key):\n  "
                                   + "\n  ".join(lines)) from None


def _drop(tree: dict, name: str) -> None:
    """Remove dotted key `name` from nested config updates (given nested or dotted)."""
    tree.pop(name, None)
    head, _, rest = name.partition(".")
    if rest and isinstance(tree.get(head), dict):
        _drop(tree[head], rest)
        if not tree[head]:
            del tree[head]


class UnknownConfigKey(SacredError):
    def __init__(self, message: str):
        super().__init__(message, print_traceback=False)


def build_experiment(spec: DatasetSpec) -> PaSSTExperiment:
    """The sacred experiment of a dataset: its `basedataset` ingredient and top-level config from the key
    tables, and the standard commands."""
    basedataset = Ingredient("basedataset")
    basedataset.configurations.append(SacredDefaults(spec.dataset_key_table))
    ex = PaSSTExperiment(spec.name, ingredients=[basedataset])
    ex.configurations.append(SacredDefaults(spec.key_table))
    _add_commands(ex, spec)
    return ex


def build_loaders(spec: DatasetSpec, config: Mapping, training: bool = True):
    """(training loader, {prefix: loader validated every epoch}, {prefix: loader scoring the best checkpoint})
    when `training`, else (None, {prefix: loader evaluate_only scores}, {})."""

    def evaluation_loaders(splits: Sequence[Split]) -> dict[str, DataLoader]:
        options = data_options(config).for_evaluation()
        return {split.prefix: evaluation_loader(
            spec.evaluation_set(config, config["basedataset"][split.file_key], options, False),
            subset=eval_subset(config) if split.restricted else None,
            **loader_options(config["datasets"][split.loader])) for split in splits}

    if not training:
        return None, evaluation_loaders(spec.evaluated(config)), {}
    activation = spec.teacher_activation(config) if callable(spec.teacher_activation) else spec.teacher_activation
    teachers = teacher_targets(config, spec.training_paths(config), activation)
    made = spec.training_set(config, data_options(config, seed=config["seed"],
                                                  teachers=tuple(teachers) if teachers else None))
    dataset, sampler = made if isinstance(made, tuple) else (made, None)
    train_config = config["datasets"]["training"]
    shuffle = spec.shuffle if train_config.get("shuffle") is None else bool(train_config["shuffle"])
    train_loader = training_loader(dataset, seed=config["seed"], sampler=sampler, shuffle=shuffle,
                                   **loader_options(train_config))
    return train_loader, evaluation_loaders(spec.validation(config)), evaluation_loaders(spec.after_training(config))


def _add_commands(ex: Experiment, spec: DatasetSpec) -> None:
    def run_training(_config, _run):
        spec.ready(_config, training=True)
        teachers = check_teachers(_config, spec.training_paths(_config))
        if teachers:
            _run.info["distillation"] = teachers
        with peer_failures_in_one_line():
            return train(_config, _run, ex.path, distilled(spec.task_for(_config), _config),
                         lambda config: build_loaders(spec, config, training=True))

    def evaluate_only(_config, _run):
        spec.ready(_config, training=False)
        with peer_failures_in_one_line():
            return evaluate(_config, _run, ex.path, spec.task_for(_config),
                            build_loaders(spec, _config, training=False)[1])

    def model_speed_test(_config, speed_test_batch_size):
        """Training speed (spectrograms/s) of the configured network on random input."""
        spec.checked(_config, training=True, with_files=False)
        return speed_test(_config, spec.task_for(_config), speed_test_batch_size)

    def test_loaders(_config):
        """Load one batch from each loader and describe it."""
        spec.ready(_config, training=True)
        train_loader, validated, after = build_loaders(spec, _config, training=True)
        names = ["training", *(split.loader for split in (*spec.validation(_config), *spec.after_training(_config)))]
        for name, loader in zip(names, [train_loader, *validated.values(), *after.values()]):
            print(f"{name}: {len(loader.dataset)} clips; {describe_batch(next(iter(loader)))}")

    def save_logits(_config, out=None, split=None, chunk_rows=CHUNK_ROWS):
        """Teacher logits of every clip of a file, in file order, no augmentation: `with out=FILE split=KEY`
        (a basedataset file key), or `out=FOLDER/` (split= one file, else every training file, each as
        FOLDER/<file stem>.logits.hdf). DDP=N shares the clips out; rerun with the same out= to continue."""
        spec.ready(_config, training=False, with_files=False)
        files = spec.training_paths(_config) if split is None else []
        sources = LogitsSources(spec.logits_files, lambda config, path: spec.evaluation_set(
            config, path, data_options(config).for_evaluation(), True), loader=spec.logits_loader)
        with peer_failures_in_one_line():
            return save_logits_procedure(_config, sources, files, out, split,
                                         lambda: build_module(_config, spec.task_for(_config), training=False),
                                         chunk_rows)

    run_training.__name__, run_training.__doc__ = "train", spec.train_doc
    evaluate_only.__doc__ = (f"Evaluate the configured network (release model, models.net.checkpoint or an "
                             f"ensemble) on {spec.evaluated_on}.")
    ex.main(run_training)
    for command in (evaluate_only, model_speed_test, test_loaders, save_logits):
        ex.command(command)
