"""Wires plugins only. ``toolkit.pytest_plugin`` (the fixtures other repos use too) comes
through its ``pytest11`` entry point; this repo's own fixtures live in ``tests/fixtures.py``."""

pytest_plugins = ("tests.fixtures", "pytester")
