"""Registry loading: a failed import leaves the registry unloaded and clean, so it fails again, then recovers."""

from __future__ import annotations

import importlib
import sys

import pytest

from ltbench.registry import Registry


def test_failed_import_is_not_half_loaded(tmp_path, monkeypatch):
    pkg = tmp_path / "regpkg_t"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from ltbench.registry import Registry\nREG = Registry('thing', ('regpkg_t',))\n"
    )
    (pkg / "a_good.py").write_text("from regpkg_t import REG\nREG.register('a')(object())\n")
    (pkg / "b_bad.py").write_text(
        "from regpkg_t import REG\nREG.register('b')(object())\nraise ImportError('boom')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    reg: Registry = importlib.import_module("regpkg_t").REG
    for _ in range(2):  # the error comes back; the registry does not pretend to be loaded
        with pytest.raises(ImportError, match="boom"):
            reg.names()
        assert "b" not in reg._entries and not reg._loaded
    (pkg / "b_bad.py").write_text("from regpkg_t import REG\nREG.register('b')(object())\n")
    importlib.invalidate_caches()
    sys.modules.pop("regpkg_t.b_bad", None)
    assert reg.names() == ["a", "b"]  # no duplicate-name error from the module that failed before
