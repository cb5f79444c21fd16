"""Small breakages a newcomer hit in the first hour (issue #18, item 4)."""

from __future__ import annotations

import os
import subprocess

import pytest
from audit_helpers import ITOPS


@pytest.mark.parametrize("args", [["checks", "list"], ["checks", "show", "ssh.root_login_disabled"],
                                  ["checks", "list", "--format", "json"]])  # fmt: skip
def test_closed_stdout_pipe_ends_quietly(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write, as `| head` after its lines
    try:
        res = subprocess.run([ITOPS, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert res.returncode == 141, res.stderr
    assert res.stderr == "", res.stderr
