"""Make the modules named in COURIER_BLOCKED_MODULES (comma-separated) fail to import, as when their extra
is not installed, in a process started with this directory on PYTHONPATH (Python imports `sitecustomize`
at start-up). Nothing is uninstalled: the finder, first on `sys.meta_path`, refuses them and their
submodules, so `import` and `importlib.util.find_spec` both fail for them."""

from __future__ import annotations

import importlib.abc
import os
import sys

BLOCKED = tuple(name for name in os.environ.get("COURIER_BLOCKED_MODULES", "").split(",") if name)


class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201, ARG002
        if any(fullname == name or fullname.startswith(name + ".") for name in BLOCKED):
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked for a test)", name=fullname)
        return None


if BLOCKED:
    sys.meta_path.insert(0, _Blocked())
