"""SIGINT/SIGTERM handling shared by the commands that run things: now part of :mod:`itops.session`."""

from __future__ import annotations

from itops.session import stop_on_signals

__all__ = ["stop_on_signals"]
