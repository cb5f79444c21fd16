"""``itops remediate``: reviewable fix scripts (sh or Ansible) from a run's FAILs, and applying them.

- :mod:`itops.remediate.spec`: what a check declares (``fix=``), validated with its metadata.
- :mod:`itops.remediate.shlib`: the POSIX sh functions every generated script carries.
- :mod:`itops.remediate.render`: FAIL results → a per-host plan → sh scripts or an Ansible playbook.
- :mod:`itops.remediate.apply`: the plan applied over the audit's SSH connections, then re-audited.
"""
