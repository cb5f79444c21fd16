"""Shared, typed logic for the built-in check packs.

Check files under ``checks/`` are loaded by path (not imported as a package), so
parsers, probe definitions and evaluation helpers they share live here, where
they are type-checked and unit-tested like the rest of itops.
"""
