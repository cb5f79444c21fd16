"""The itops lab: real OpenSSH sshd hosts on 127.0.0.1 for the demo, the tests and the benchmark.

``python -m itops_lab up --dir DIR --hosts N [--roots]`` starts a fleet from the command line;
tests use :func:`start_fleet` and :class:`HostRoots` through the fixtures in ``tests/conftest.py``.
"""

from itops_lab.fleet import Fleet, LabHost, LabHostSpec, start_fleet
from itops_lab.netutil import closed_port, read_banner, silent_port
from itops_lab.plant import (
    LabError,
    apply_profile,
    plant,
    plant_mode,
    plant_owner,
    set_sshd_options,
)
from itops_lab.procs import stop_processes
from itops_lab.profiles import HARDENED, PROFILES, WEAK, RootProfile
from itops_lab.roots import HostRoots, RootKind, ensure_debian_base
from itops_lab.sshd import LabMount

__all__ = [
    "HARDENED",
    "PROFILES",
    "WEAK",
    "Fleet",
    "HostRoots",
    "LabError",
    "LabHost",
    "LabHostSpec",
    "LabMount",
    "RootKind",
    "RootProfile",
    "apply_profile",
    "closed_port",
    "ensure_debian_base",
    "plant",
    "plant_mode",
    "plant_owner",
    "read_banner",
    "set_sshd_options",
    "silent_port",
    "start_fleet",
    "stop_processes",
]
