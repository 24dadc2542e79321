"""Heavy libraries that load on first use: ``torch``, ``F`` (``torch.nn.functional``) and ``stats`` (``scipy.stats``).

``from ponder.lazy import torch`` in a module that uses torch only inside its functions lets the
module load without torch (about 1.5 s): the catalog registers every entry, so a study is
validated and its run ids computed, and a rerun that trains nothing finishes, without it.
The first attribute read (``torch.zeros``) imports the real module, which the proxy then keeps.
Module-level code must not read attributes (``dtype=torch.float32`` as a default argument
would load torch at import): such defaults are None.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["F", "stats", "torch"]


class _Module:
    def __init__(self, name: str) -> None:
        self._name, self._module = name, None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("_name", "_module"):  # copy, pickle and introspection: no import
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __reduce__(self):
        return _Module, (self._name,)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, loaded on first use>"


torch: Any = _Module("torch")
F: Any = _Module("torch.nn.functional")
stats: Any = _Module("scipy.stats")
