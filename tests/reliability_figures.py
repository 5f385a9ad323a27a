"""The reliability suite's figures, printed at the end of the pytest run."""

from __future__ import annotations

import pytest

FIGURES: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, figure in FIGURES.items():
            terminalreporter.write_line(f"{name}: {figure}")
