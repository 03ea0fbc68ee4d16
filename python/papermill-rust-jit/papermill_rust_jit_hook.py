"""Registers the Rust translator as soon as papermill's translators are imported (run at interpreter
start by `papermill_rust_jit.pth`; imports nothing of papermill until then: a module of its own, as
importing a submodule of `papermill_rust_jit` would import papermill first)."""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

TARGET = "papermill.translators"


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        # papermill's registry exists now; ours joins it.
        import papermill_rust_jit  # noqa: F401


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


if TARGET in sys.modules:
    import papermill_rust_jit  # noqa: F401
elif not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
