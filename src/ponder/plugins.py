"""Plugins: a user's own components, registered with the same decorator as the built-ins.

A study names them with ``plugins = ["my_components"]`` (a module next to the study file, or any
importable module) and the CLI with ``--plugin MODULE``. Importing the module runs its
``@ponder.register(kind, name, formula=...)`` decorators; nothing else is needed.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from ponder.errors import SpecError

__all__ = ["load_plugins"]

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _from_file(name: str, path: Path) -> None:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec, as import does, so the module can refer to itself
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def load_plugins(modules: list[str], *, base: str | Path | None = None) -> None:
    """Import each plugin module: ``<base>/<name>.py`` when that file exists, else by import name.

    A module already imported from the same file is imported again, so an edited plugin is seen
    (its entries replace the old ones; run ids hash the new code).

    Raises:
        SpecError: a name is not a module name, the module is missing, or it fails while loading.
    """
    for name in modules:
        if not isinstance(name, str) or not _MODULE.match(name):
            raise SpecError(f"plugin {name!r} is not a module name (letters, digits, '_' and dots, e.g. my_components)")
        path = Path(base) / f"{name.replace('.', '/')}.py" if base is not None else None
        try:
            if path is not None and path.is_file():
                _from_file(name, path)
            elif name in sys.modules:
                importlib.reload(sys.modules[name])
            else:
                importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name.split(".")[0] and exc.name != name:
                raise SpecError(f"plugin {name!r} failed while loading: it imports {exc.name!r}, which is not installed") from None
            where = f" (looked for {str(path)!r} and on the Python path)" if path is not None else ""
            raise SpecError(f"plugin module {name!r} was not found{where}") from None
        except SpecError:
            raise
        except Exception as exc:  # noqa: BLE001  (a user's module can fail in any way)
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise SpecError(f"plugin {name!r} failed while loading: {type(exc).__name__}: {first}") from None
