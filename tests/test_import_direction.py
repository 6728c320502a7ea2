"""The dependency direction: compass_model ← compass_eval, compass_model ← compass_train, and
compass_cli on top joining them. Neither middle package may import the other, and nothing below
may import compass_cli, so each package installs and runs without the ones beside it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from clitools import REPO, run_python

FORBIDDEN = {
    "compass_model": {"compass_eval", "compass_train", "compass_cli"},
    "compass_eval": {"compass_train", "compass_cli"},
    "compass_train": {"compass_eval", "compass_cli"},
}

# Imports the given modules of one package while a meta-path finder refuses the forbidden
# packages. The start-up hook (.pth) has already imported compass_eval; that copy and the hook's
# finder are removed first, so only what the package itself imports can reach a forbidden package.
_IMPORT_ALL_BLOCKED = """
import importlib, importlib.abc, json, sys
package, forbidden, modules = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3:]
refused, failed = [], {}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in forbidden:
            refused.append(name)
            raise ImportError(f"{name} is forbidden to {package}")

for name in [n for n in sys.modules if n.partition(".")[0] in forbidden]:
    del sys.modules[name]
sys.meta_path[:] = [Refuse(), *(f for f in sys.meta_path if type(f).__name__ != "_PostImportFinder")]
for module in modules:
    try:
        importlib.import_module(module)
    except Exception as error:
        failed[module] = f"{type(error).__name__}: {error}"
print(json.dumps({"refused": sorted(set(refused)), "failed": failed}))
"""


def _sources(package: str) -> dict[str, Path]:
    """Module name -> file, for every source file of the package, namespace folders included
    (`demo_data/` has no `__init__.py`, so pkgutil would not walk it)."""
    sources = {}
    for source in sorted((REPO / package).rglob("*.py")):
        parts = source.relative_to(REPO).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        sources[".".join(parts)] = source
    return sources


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_every_module_imports_with_the_forbidden_packages_blocked(package, tmp_path):
    # `__main__` modules run their command when imported; their imports are checked below.
    modules = [name for name in _sources(package) if not name.endswith("__main__")]
    forbidden = ",".join(sorted(FORBIDDEN[package]))
    script = ["-c", _IMPORT_ALL_BLOCKED, package, forbidden, *modules]
    run = run_python(script, REPO, COMPASS_LM_EVAL_HOOK="0")
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["refused"] == [], f"{package} imports {found['refused']}: {found['failed']}"
    assert found["failed"] == {}


def _forbidden_imports(package: str) -> list[str]:
    """Every import statement of the package's sources, function-level ones included (a lazy
    import runs only on the path that needs it, so importing the modules does not see it)."""
    found = []
    for source in _sources(package).values():
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.partition(".")[0] in FORBIDDEN[package]:
                    found.append(f"{source.relative_to(REPO)}:{node.lineno} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_source_line_imports_a_forbidden_package(package):
    assert _forbidden_imports(package) == []
