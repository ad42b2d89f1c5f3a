"""Every error an operator can see is an AuroraError (one ``error: ...`` line, an exit code)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import aurora
from aurora.errors import AuroraError


def test_every_public_exception_class_derives_from_aurora_error() -> None:
    strays = []
    for info in pkgutil.walk_packages(aurora.__path__, "aurora."):
        if info.name == "aurora.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == info.name and not name.startswith("_")
                    and not issubclass(value, AuroraError)):
                strays.append(f"{info.name}.{name}")
    assert strays == []


def test_the_command_layer_has_no_import_cycle() -> None:
    """The seed's reporter script (aurora.slo.cli) runs without importing aurora.cli, which
    imports every area's commands: the areas depend on aurora.command, never on aurora.cli."""
    import subprocess
    import sys

    probe = ("import sys\n"
             "from aurora.slo.cli import reporter_main\n"
             "try:\n"
             "    reporter_main(['--help'])\n"
             "except SystemExit as exc:\n"
             "    assert exc.code in (0, None), exc.code\n"
             "assert 'aurora.cli' not in sys.modules, 'the reporter imported aurora.cli'\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "canary-slo-reporter.py" in result.stdout
