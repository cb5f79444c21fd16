"""The itops lab: real OpenSSH sshd hosts on 127.0.0.1 for the demo, the tests and the benchmark.

``python -m itops.lab up --dir DIR --hosts N [--roots]`` starts a fleet from the command line;
tests use :func:`start_fleet` and :class:`HostRoots` through the fixtures in ``tests/conftest.py``.
"""

from itops.lab.fleet import Fleet, LabHost, LabHostSpec, start_fleet
from itops.lab.netutil import closed_port, read_banner, silent_port
from itops.lab.plant import (
    LabError,
    apply_profile,
    plant,
    plant_mode,
    plant_owner,
    set_sshd_options,
)
from itops.lab.procs import stop_processes
from itops.lab.profiles import HARDENED, PROFILES, WEAK, RootProfile
from itops.lab.roots import HostRoots, RootKind, ensure_debian_base
from itops.lab.sshd import LabMount

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
