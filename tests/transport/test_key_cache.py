"""Identity files are parsed once per run, and again when the file changes (a rotated key)."""

from __future__ import annotations

import os

from itops.transport.ssh import _load_key
from itops_lab.netutil import generate_ed25519


def test_an_identity_file_is_parsed_once_and_again_when_it_changes(tmp_path):
    path = tmp_path / "id_ed25519"
    first = generate_ed25519(path, "first")
    loaded = _load_key(str(path))
    assert loaded.asbytes() == first.asbytes()
    assert _load_key(str(path)) is loaded  # not parsed again

    # a rotated key replaces the file (new inode, like `ssh-keygen` + mv): the new key is used
    os.rename(path, tmp_path / "old")
    second = generate_ed25519(path, "second")
    assert _load_key(str(path)).asbytes() == second.asbytes() != first.asbytes()
