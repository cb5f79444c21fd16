"""Scheduled jobs: ``schedule.yaml`` (config), one execution (execute, jobs), the daemon, exports."""

from itops.scheduler.config import Job, Schedule, load_schedule
from itops.scheduler.cron import parse_cron

__all__ = ["Job", "Schedule", "load_schedule", "parse_cron"]
