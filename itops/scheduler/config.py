"""``schedule.yaml``: jobs (cron + time zone + command + options), notifiers, and how they are validated.

The file is read with :mod:`itops.yamlload` like the inventory: every problem at once, each
with file, line and key path, raised as one :class:`~itops.errors.ConfigError` (exit 4)::

    version: 1
    timezone: Europe/Berlin          # default time zone of every job (default UTC)
    store: /var/lib/itops            # run store (default: --store, $ITOPS_HOME, the user data dir)
    reports: {dir: /var/www/itops, url: https://itops.example.com/reports, format: html}
    notifiers:
      ops-mail:
        email: {host: smtp.example.com, port: 587, from: itops@example.com, to: [ops@example.com],
                username: itops, password_env: SMTP_PASSWORD}   # STARTTLS; allow_plaintext: true to log in without TLS
      ops-chat:
        webhook: {url_env: SLACK_WEBHOOK_URL}
    jobs:
      nightly-backups:
        cron: "30 2 * * *"
        command: backup-verify
        inventory: inventory/prod.yaml
        options: {restore_test: true}
        notify: [{to: ops-mail, when: change}, {to: ops-chat, when: failure}]
      retention:
        cron: "15 4 * * 0"
        command: runs-prune
        options: {older_than: 90d, keep_last: 50}

Cron expressions have 5 fields (minute hour day-of-month month day-of-week, as crontab) or
6 with seconds first. Day-of-week numbers follow crontab (0 and 7 are Sunday); restricting
both day-of-month and day-of-week is refused, because crontab ORs them while the scheduler
and systemd AND them. Relative paths are relative to the schedule file's folder.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from itops.errors import ConfigError, ConfigProblem
from itops.inlinesecrets import find_inline_secrets, inline_secret_paths
from itops.scheduler.cron import CronSpec, parse_cron
from itops.yamlload import (
    Duration,
    EnvName,
    LineMap,
    OptionalMapping,
    Port,
    PositiveDuration,
    StrictModel,
    StrList,
    format_path,
    raise_if_problems,
    read_yaml,
    unknown_name,
    validate_model,
)

COMMANDS = ("audit", "backup-verify", "dr-drill", "dr-check", "report", "runs-prune")
#: Commands that store no run of their own (nothing to report on or compare).
NO_RUN_COMMANDS = ("report", "runs-prune")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def schedule_error(problems: list[ConfigProblem]) -> ConfigError:
    return ConfigError(problems, what="schedule")


def _cron(value: str) -> str:
    parse_cron(value)
    return " ".join(value.split())


def _zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like UTC or Europe/Berlin)") from None
    return value


Cron = Annotated[str, AfterValidator(_cron)]
Zone = Annotated[str, AfterValidator(_zone)]


# --- notifiers ----------------------------------------------------------------------------------


class EmailSpec(StrictModel):
    """SMTP delivery: STARTTLS on by default; credentials only from an environment variable or a file.

    A login (``username``) over a connection without TLS (``starttls: false`` and ``ssl: false``)
    would send the password in clear: refused unless ``allow_plaintext: true`` says so.
    """

    host: str = Field(min_length=1)
    port: Port = 587
    starttls: bool = True
    ssl: bool = False  # implicit TLS (port 465) instead of STARTTLS
    cafile: str | None = None  # CA bundle to verify the server with (default: the system's)
    sender: str = Field(alias="from", min_length=3)
    to: Annotated[StrList, AfterValidator(lambda v: v or _raise("list at least one recipient"))]
    username: str | None = None
    password_env: EnvName | None = None
    password_file: str | None = None
    timeout: PositiveDuration = 30.0
    attach_report: bool = True
    allow_plaintext: bool = False  # log in without TLS (the password crosses the network in clear)

    @model_validator(mode="after")
    def _checks(self) -> EmailSpec:
        if self.password_env and self.password_file:
            raise ValueError("set password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username")
        if self.ssl and self.starttls:
            object.__setattr__(self, "starttls", False)  # implicit TLS already encrypts
        if self.plaintext_login and not self.allow_plaintext:
            raise ValueError(PLAINTEXT_LOGIN)
        return self

    @property
    def plaintext_login(self) -> bool:
        """A login over a connection that is never encrypted."""
        return bool(self.username) and not (self.ssl or self.starttls)


PLAINTEXT_LOGIN = (
    "username with starttls: false and ssl: false would send the SMTP password in clear: "
    "set starttls: true (port 587) or ssl: true (port 465), or allow_plaintext: true to accept that"
)


def _raise(message: str) -> Any:
    raise ValueError(message)


class WebhookSpec(StrictModel):
    """HTTP POST of a JSON message: Slack-compatible ``{"text": ...}`` or itops' own document."""

    url: str | None = None
    url_env: EnvName | None = None  # a Slack webhook URL is itself a secret
    url_file: str | None = None
    format: Literal["slack", "json"] = "slack"
    timeout: PositiveDuration = 10.0

    @model_validator(mode="after")
    def _one_url(self) -> WebhookSpec:
        given = [k for k in ("url", "url_env", "url_file") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("set exactly one of url, url_env, url_file")
        if self.url and not re.match(r"^https?://", self.url):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        return self


class NotifierSpec(StrictModel):
    """One destination: an ``email`` or a ``webhook``, with retries and exponential backoff."""

    internal_fields = frozenset({"name"})
    name: str = ""
    email: EmailSpec | None = None
    webhook: WebhookSpec | None = None
    retries: int = Field(3, ge=0, le=10)
    backoff: PositiveDuration = 2.0  # first wait; doubles each retry, at most 5 minutes

    @model_validator(mode="after")
    def _one_channel(self) -> NotifierSpec:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("set exactly one of email, webhook")
        return self


class NotifyRule(StrictModel):
    """``to`` a notifier, ``when``: failure (exit not 0), change (new failures or fixed since the job's
    previous run), always."""

    to: str = Field(min_length=1)
    when: Literal["failure", "change", "always"] = "failure"


def _rules(value: object) -> object:
    if isinstance(value, str):
        return [{"to": value}]
    if isinstance(value, list):
        return [{"to": v} if isinstance(v, str) else v for v in value]
    return value


NotifyRules = Annotated[tuple[NotifyRule, ...], BeforeValidator(_rules)]


# --- jobs -------------------------------------------------------------------------------------------

SeverityName = Literal["critical", "high", "medium", "low", "info"]


class AuditOptions(StrictModel):
    limit: StrList = ()
    checks: StrList = ()
    fail_on: SeverityName = "low"
    local: bool = False
    concurrency: int | None = Field(None, ge=1, le=1024)
    waivers: str | None = None
    prom_file: str | None = None  # node_exporter textfile metrics of each run


class BackupVerifyOptions(StrictModel):
    limit: StrList = ()
    checks: StrList = ()
    restore_test: bool | None = None  # True: restore every restorable backup; False: none
    fail_on: SeverityName = "low"
    concurrency: int | None = Field(None, ge=1, le=1024)
    prom_file: str | None = None


class DrillOptions(StrictModel):
    unattended: bool = False  # answer every manual step with yes (`--yes`)
    answers: dict[str, str] = {}  # manual step name -> recorded answer
    vars: OptionalMapping = {}
    prom_file: str | None = None  # node_exporter textfile metrics of the drills


class DrCheckOptions(StrictModel):
    playbooks: str | None = None  # folder of the user's playbooks (else $ITOPS_PLAYBOOKS; none: the job fails)
    max_age: PositiveDuration | None = None


class PruneOptions(StrictModel):
    """Run retention: ``itops runs prune --older-than ... --keep-last ...``."""

    older_than: PositiveDuration
    keep_last: int = Field(0, ge=0)
    dry_run: bool = False


class ReportOptions(StrictModel):
    run: str = "latest"  # a run id, `latest`, or `job:NAME` (that job's last run)
    format: str = "html"
    output: str = Field(min_length=1)


OPTION_MODELS: Mapping[str, type[StrictModel]] = {
    "audit": AuditOptions,
    "backup-verify": BackupVerifyOptions,
    "dr-drill": DrillOptions,
    "dr-check": DrCheckOptions,
    "report": ReportOptions,
    "runs-prune": PruneOptions,
}


class JobSpec(StrictModel):
    """One scheduled job as written; the loader fills ``name``, ``line`` and the validated ``opts``."""

    internal_fields = frozenset({"name", "line"})
    name: str = ""
    line: int = 0
    cron: Cron
    timezone: Zone | None = None
    command: Literal["audit", "backup-verify", "dr-drill", "dr-check", "report", "runs-prune"]
    inventory: str | None = None
    playbook: str | None = None
    options: OptionalMapping = {}
    notify: NotifyRules | None = None
    misfire_grace: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    enabled: bool = True


class Defaults(StrictModel):
    misfire_grace: PositiveDuration = 3600.0  # a run missed by up to this long (machine asleep) still runs, once
    timeout: PositiveDuration = 6 * 3600.0  # a job running longer is stopped and recorded as interrupted
    notify: NotifyRules = ()


class ReportsSpec(StrictModel):
    dir: str | None = None  # where each job run's report is written (default: <state>/reports)
    url: str | None = None  # base URL the dir is served under: messages link to it
    format: str = "html"


class TopSpec(StrictModel):
    version: Literal[1]
    timezone: Zone = "UTC"
    store: str | None = None
    state_dir: str | None = None  # job store, lock, job history (default: <store>/scheduler)
    shutdown_grace: Duration = 60.0  # on SIGTERM, how long a running job may take to finish
    reports: ReportsSpec = ReportsSpec()
    defaults: Defaults = Defaults()
    notifiers: dict[str, Any] = {}
    jobs: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """A validated job with its defaults applied and paths resolved."""

    name: str
    line: int
    cron: CronSpec
    timezone: str
    command: str
    inventory: Path | None
    playbook: Path | None
    options: Any  # the command's options model
    notify: tuple[NotifyRule, ...]
    misfire_grace: float
    timeout: float
    enabled: bool


@dataclass(frozen=True)
class Schedule:
    """A validated schedule file."""

    path: Path
    digest: str
    timezone: str
    store: Path | None
    state_dir: Path | None
    shutdown_grace: float
    reports: ReportsSpec
    notifiers: dict[str, NotifierSpec]
    jobs: dict[str, Job]

    @property
    def base(self) -> Path:
        return self.path.resolve().parent

    def resolve(self, value: str) -> Path:
        """A path from the file, relative to the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p


def load_schedule(path: str | Path) -> Schedule:
    """Load and validate a schedule file; raise ConfigError (exit 4) with every problem."""
    doc = read_yaml(path, schedule_error)
    if not doc.problems and not isinstance(doc.data, dict):
        doc.problems.append(ConfigProblem(doc.file, 1, "", "a schedule file is a mapping starting with `version: 1`"))
    raise_if_problems(doc.problems, schedule_error)
    loader = _Loader(Path(path), doc.file, doc.lines, doc.data)
    schedule = loader.load(doc.digest)
    raise_if_problems(loader.problems, schedule_error)
    assert schedule is not None
    return schedule


class _Loader:
    def __init__(self, path: Path, file: str, lines: LineMap, data: dict[str, Any]) -> None:
        self.path, self.file, self.lines, self.data = path, file, lines, data
        self.secrets = list(inline_secret_paths(data))
        self.problems = find_inline_secrets(data, file=file, lines=lines)
        self.invalid = False

    def problem(self, where: tuple[str | int, ...], message: str) -> None:
        self.problems.append(ConfigProblem(self.file, self.lines.nearest(where), format_path(where), message))

    def validate(self, model: type[Any], data: object, where: tuple[str | int, ...]) -> Any:
        spec, problems = validate_model(
            model, data, file=self.file, lines=self.lines, prefix=where, ignore=self.secrets
        )
        self.problems += problems
        return spec

    def lenient(self, model: type[Any], data: object, where: tuple[str | int, ...]) -> Any:
        """Validate; when that fails, again (quietly) without the keys already reported, to check the rest."""
        before = len(self.problems)
        spec = self.validate(model, data, where)
        if spec is None and isinstance(data, dict):
            prefix = format_path(where)
            reported = [p.path for p in self.problems[before:]]
            bad = {
                k
                for k in data
                if any(p == f"{prefix}.{k}" or p.startswith((f"{prefix}.{k}.", f"{prefix}.{k}[")) for p in reported)
            }
            spec, _ = validate_model(
                model,
                {k: v for k, v in data.items() if k not in bad} | {"cron": "* * * * *"}
                if "cron" in bad
                else {k: v for k, v in data.items() if k not in bad},
                file=self.file,
                lines=self.lines,
            )
            if spec is not None:
                self.invalid = True
        return spec

    def load(self, digest: str) -> Schedule | None:
        before = len(self.problems)
        top: TopSpec | None = self.validate(TopSpec, self.data, ())
        if top is None:
            # validate again without the top-level keys already reported, so the jobs are still checked
            bad = {p.path.split(".")[0].split("[")[0] for p in self.problems[before:]}
            rest = {k: v for k, v in self.data.items() if k not in bad or k == "jobs"}
            top, _ = validate_model(TopSpec, {"version": 1, **rest}, file=self.file, lines=self.lines)
            if top is None:
                return None
        notifiers: dict[str, NotifierSpec] = {}
        for name, raw in top.notifiers.items():
            if not _NAME_RE.match(str(name)):
                self.problem(("notifiers", name), f"invalid name {name!r}: use letters, digits, '.', '_' and '-'")
            notifier = self.validate(NotifierSpec, raw, ("notifiers", name))
            if notifier is not None:
                notifiers[name] = notifier.model_copy(update={"name": name})
        base = Path(self.path).resolve().parent

        def resolve(value: str | None) -> Path | None:
            if value is None:
                return None
            p = Path(value).expanduser()
            return p if p.is_absolute() else base / p

        self.check_rules(top.defaults.notify, ("defaults", "notify"), top.notifiers)
        jobs: dict[str, Job] = {}
        if not top.jobs:
            self.problem(("jobs",), "no jobs: define at least one under `jobs:`")
        for name, raw in top.jobs.items():
            where: tuple[str | int, ...] = ("jobs", name)
            if not _NAME_RE.match(str(name)):
                self.problem(where, f"invalid job name {name!r}: use letters, digits, '.', '_' and '-'")
            spec: JobSpec | None = self.lenient(JobSpec, raw, where)
            if spec is None:
                continue
            opts = self.validate(OPTION_MODELS[spec.command], dict(spec.options), (*where, "options"))
            self.check_job(spec, where, top, opts)
            rules = spec.notify if spec.notify is not None else top.defaults.notify
            if spec.notify is not None:
                self.check_rules(spec.notify, (*where, "notify"), top.notifiers)
            if opts is None:
                continue
            jobs[name] = Job(
                name=name,
                line=self.lines.nearest(where),
                cron=parse_cron(spec.cron),
                timezone=spec.timezone or top.timezone,
                command=spec.command,
                inventory=resolve(spec.inventory),
                playbook=resolve(spec.playbook),
                options=opts,
                notify=tuple(rules),
                misfire_grace=spec.misfire_grace or top.defaults.misfire_grace,
                timeout=spec.timeout or top.defaults.timeout,
                enabled=spec.enabled,
            )
        if self.problems:
            return None
        return Schedule(
            path=self.path,
            digest=digest,
            timezone=top.timezone,
            store=resolve(top.store),
            state_dir=resolve(top.state_dir),
            shutdown_grace=top.shutdown_grace,
            reports=top.reports,
            notifiers=notifiers,
            jobs=jobs,
        )

    def check_rules(
        self, rules: tuple[NotifyRule, ...], where: tuple[str | int, ...], known: Mapping[str, Any]
    ) -> None:
        for i, rule in enumerate(rules):
            if rule.to not in known:
                self.problem((*where, i, "to"), unknown_name("notifier", rule.to, list(known)))

    def check_job(self, spec: JobSpec, where: tuple[str | int, ...], top: TopSpec, opts: Any) -> None:
        needs_inventory = spec.command in ("audit", "backup-verify")
        if needs_inventory and not spec.inventory:
            self.problem(where, f"missing required key 'inventory' (a {spec.command} job needs one)")
        if spec.command == "dr-drill" and not spec.playbook:
            self.problem(where, "missing required key 'playbook' (a dr-drill job needs one)")
        if spec.command != "dr-drill" and spec.playbook:
            self.problem((*where, "playbook"), f"only dr-drill jobs take a playbook, this is {spec.command}")
        if spec.command in ("dr-check", "report", "runs-prune") and spec.inventory:
            self.problem((*where, "inventory"), f"a {spec.command} job takes no inventory")
        if isinstance(opts, ReportOptions):
            from itops.errors import UsageError
            from itops.report import formats, normalize_format

            try:
                normalize_format(opts.format)
            except UsageError:
                self.problem(
                    (*where, "options", "format"),
                    f"unknown report format {opts.format!r}; formats: " + ", ".join(formats()),
                )
            if opts.run.startswith("job:") and opts.run[4:] not in top.jobs:
                self.problem((*where, "options", "run"), f"no job named {opts.run[4:]!r}")
        for key in ("inventory", "playbook"):
            value = getattr(spec, key)
            if value is not None:
                p = Path(value).expanduser()
                p = p if p.is_absolute() else Path(self.path).resolve().parent / p
                if not p.is_file():
                    self.problem((*where, key), f"file not found: {p}")
