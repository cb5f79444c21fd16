"""Backup verification: freshness against RPO, integrity, protection, and timed restore tests.

- :mod:`itops.backup.facts`: what backup checks see (:class:`~itops.backup.facts.BackupFacts`).
- :mod:`itops.backup.options`: per-kind settings (integrity method, ``restore_test`` shapes), validated.
- :mod:`itops.backup.files`, :mod:`~itops.backup.postgres`, :mod:`~itops.backup.restic`: host-side
  verifiers whose probes go into the host's one batched script; :mod:`~itops.backup.cloud`: S3,
  EBS/RDS snapshots and AWS Backup through the account's boto3 session.
- :mod:`itops.backup.verify`: runs them (bounded concurrency) and evaluates ``checks/backup``.
- :mod:`itops.backup.metrics`: per-backup records in the run store and the node_exporter textfile.
"""
