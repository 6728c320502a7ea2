"""Lets the plain `lm_eval` command find the `compass` model and the Compass tasks.

lm-eval 0.4.13 has no plugin entry points. A `.pth` line calls `install()` at interpreter start;
it only adds a meta-path finder, so start-up imports nothing of lm-eval. When lm-eval itself
imports its registry or its task manager, the finder runs a callback right after that module has
executed: the model is registered lazily and our task folder joins every TaskManager's include
paths (ahead of the user's, so theirs can override ours).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType

MODEL_NAME = "compass"
MODEL_TARGET = "compass_eval.lm:CompassLM"


def _register_model(registry: ModuleType) -> None:
    # lm-eval fills its model registry lazily only when it is empty: fill it with the built-ins
    # first, or registering ours would hide `hf` and the rest.
    import lm_eval.models  # noqa: F401

    registry.model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def _add_task_folder(manager: ModuleType) -> None:
    from compass_eval.paths import tasks_dir

    original = manager.TaskManager.__init__

    @functools.wraps(original)
    def __init__(self, verbosity=None, include_path=None, *args, **kwargs):
        if include_path is None:
            user_paths = []
        elif isinstance(include_path, list | tuple):
            user_paths = list(include_path)
        else:
            user_paths = [include_path]
        original(self, verbosity, [str(tasks_dir()), *user_paths], *args, **kwargs)

    manager.TaskManager.__init__ = __init__


_AFTER_IMPORT: dict[str, Callable[[ModuleType], None]] = {
    "lm_eval.api.registry": _register_model,
    "lm_eval.tasks.manager": _add_task_folder,
}


class _ThenCall(importlib.abc.Loader):
    """Runs the real loader, then the callback on the freshly executed module."""

    def __init__(self, loader: importlib.abc.Loader, callback: Callable[[ModuleType], None]):
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        callback = _AFTER_IMPORT.get(fullname)
        if callback is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenCall(spec.loader, callback)
        return spec


def install() -> None:
    """Idempotent: a second `.pth` (editable and wheel side by side) must not hook twice."""
    if not any(isinstance(finder, _PostImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
