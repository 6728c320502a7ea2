"""Lets the plain `lm_eval` command find the `compass` model and the Compass tasks.

lm-eval 0.4.13 has no plugin entry points. A `.pth` line calls `install()` at interpreter start;
it only adds a meta-path finder, so start-up imports nothing of lm-eval. When lm-eval itself
imports one of the modules below, the finder runs a callback right after that module has
executed: the model is registered lazily, our task folder joins every TaskManager's include paths
(ahead of the user's, so theirs can override ours), and the CLI shows a CompassInputError as one
line with exit status 2.

The hook must never cost anyone else lm-eval: a callback that fails (a broken Compass install)
prints one warning line and leaves that module as lm-eval made it. Setting
`COMPASS_LM_EVAL_HOOK=0` turns the hook off altogether (lm-eval exactly as without Compass).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType

MODEL_NAME = "compass"
MODEL_MODULE = "compass_eval.lm"
MODEL_TARGET = f"{MODEL_MODULE}:CompassLM"
DISABLE_VARIABLE = "COMPASS_LM_EVAL_HOOK"


def _register_model(registry: ModuleType) -> None:
    # lm-eval fills its model registry lazily only when it is empty: fill it with the built-ins
    # first, or registering ours would hide `hf` and the rest.
    import lm_eval.models  # noqa: F401

    # Registration is by name only; a model module that cannot be found would fail much later.
    if importlib.util.find_spec(MODEL_MODULE) is None:
        raise ImportError(f"{MODEL_MODULE} is not importable")
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


def _input_errors_as_one_line(harness: ModuleType) -> None:
    """Scoped to the `lm_eval` command (console script and `python -m lm_eval`, which both run
    `HarnessCLI.execute`): programs that import the model themselves keep their own error
    handling, and exit status 2 is a normal exit (atexit hooks and teardown still run)."""
    from compass_model.errors import CompassInputError

    original = harness.HarnessCLI.execute

    @functools.wraps(original)
    def execute(self, args):
        try:
            return original(self, args)
        except CompassInputError as error:
            sys.stdout.flush()
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    harness.HarnessCLI.execute = execute


_AFTER_IMPORT: dict[str, Callable[[ModuleType], None]] = {
    "lm_eval.api.registry": _register_model,
    "lm_eval.tasks.manager": _add_task_folder,
    "lm_eval._cli.harness": _input_errors_as_one_line,
}
_warned = False


def _warn_once(module: str, error: BaseException) -> None:
    global _warned
    if not _warned:
        _warned = True
        print(
            f"compass: not hooked into lm-eval ({module}: {type(error).__name__}: {error}); "
            f"lm-eval runs without the compass model and tasks. Reinstall compass, or set "
            f"{DISABLE_VARIABLE}=0 to silence this.",
            file=sys.stderr,
        )


class _ThenCall(importlib.abc.Loader):
    """Runs the real loader, then the callback on the freshly executed module."""

    def __init__(self, loader: importlib.abc.Loader, callback: Callable[[ModuleType], None]):
        self._loader = loader
        self._callback = callback

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        try:
            self._callback(module)
        except Exception as error:  # whatever breaks in Compass must not break lm-eval
            _warn_once(module.__name__, error)

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
    if os.environ.get(DISABLE_VARIABLE, "").strip() == "0":
        return
    if not any(isinstance(finder, _PostImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
