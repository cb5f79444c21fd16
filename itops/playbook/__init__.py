"""DR playbooks: the schema (``schema``), step execution (``steps``, ``restore``), drills and history (``drill``),
and the DR-readiness check's evaluation (``readiness``)."""

from itops.playbook.schema import Playbook, Step, load_playbook

__all__ = ["Playbook", "Step", "load_playbook"]
