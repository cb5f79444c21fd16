"""The API check packs are written against: checks, probes and the facts they evaluate.

A host check declares metadata, the probes (remote shell commands) it needs and a
pure ``evaluate(facts, params)`` function. It never opens a connection, prints or
exits: the runner collects every probe a host needs in one batched exec and hands
the outputs to each check as :class:`Facts`.

How probes run: each probe is one POSIX sh command, run on the host as
``sh -c COMMAND`` with ``LC_ALL=C``, ``PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin``,
stdin from /dev/null, cwd ``/``, under ``timeout`` (rc 124 → ``timed_out``). All probes of
one host go in one batched script (itops.transport.batch); rc 127 means command not found.
A check whose probe failed must return ERROR ("could not assess: ..."), never PASS.

Writing a check::

    SSHD = Probe("sshd_effective", "sshd -T")

    @host_check(
        id="ssh.root_login_disabled",
        title="SSH root login is disabled",
        severity=Severity.HIGH,
        rationale="...", remediation="Set `PermitRootLogin no` in /etc/ssh/sshd_config",
        frameworks={"cis-debian-12": ["5.1.20"], "nist-800-53": ["AC-6(2)"], "iso-27001": ["A.8.2"]},
        probes=[SSHD],
        params={"allowed": ["no"]},
    )
    def root_login_disabled(facts: Facts, params: Params) -> Finding: ...

Output several checks read is parsed once per host: ``facts.parsed(PROBE, parser)`` returns what
the parser gave for that output to every check of the host (a :class:`HostMemo` per host evaluation);
the parser returns a deeply immutable value (:func:`ensure_immutable`), so no check can alter what
another sees.
"""

from __future__ import annotations

import difflib
import functools
import re
import shlex
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# the facts transports gather live below this API (transports never import it); check authors get them here
from itops.facts import CloudResource, CollectionResult, NotAssessable, ProbeResult
from itops.frameworks import CATALOGUES
from itops.frameworks import REQUIRED as REQUIRED_FRAMEWORKS

# the per-host memo and the os-release parser live in their own modules; check authors get them here
from itops.hostmemo import HostMemo, ensure_immutable
from itops.model import Evidence, Finding, Result, Severity, Status, frozen_instance
from itops.osrelease import os_family, parse_os_release
from itops.remediate.spec import Fix

if TYPE_CHECKING:
    from itops.backup.facts import BackupFacts

__all__ = [
    "FRAMEWORKS",
    "OS_FAMILIES",
    "REQUIRED_FRAMEWORKS",
    "BackupEvaluate",
    "Check",
    "CheckMeta",
    "CloudEvaluate",
    "CloudFacts",
    "CloudResource",
    "CollectionResult",
    "Facts",
    "Finding",
    "HostMemo",
    "NotAssessable",
    "Params",
    "Probe",
    "ProbeResult",
    "Severity",
    "Status",
    "aws_check",
    "backup_check",
    "ensure_immutable",
    "host_check",
    "os_family",
    "parse_os_release",
    "quote",
]

quote = shlex.quote

#: Framework catalogue keys a check may map to (itops.frameworks: title and version of each).
FRAMEWORKS = tuple(CATALOGUES)

CHECK_ID_RE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")
#: ``{name}`` in a remediation text: filled with the parameter's effective value (per host).
PARAM_REF_RE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
#: An IAM action a cloud check needs, e.g. ``s3:GetBucketPolicy``.
IAM_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")

Params = Mapping[str, Any]
TargetKind = Literal["host", "aws", "backup", "dr"]
#: OS families a host check may name in ``os_families`` (the runner's ``facts.os.family``).
OS_FAMILIES = ("debian", "rhel", "suse", "alpine", "arch")
#: What a backup check reads (its ``collections``); the backup verifier gathers each once per backup.
BACKUP_ASPECTS = ("copies", "integrity", "protection", "restore")


@dataclass(frozen=True)
class Probe:
    """A POSIX sh command a check needs run on the host.

    ``command`` is a string or a function of the check's resolved params returning
    one; any param that reaches the command must go through :func:`quote`. Checks
    whose probes render to the same command share one execution.
    """

    name: str
    command: str | Callable[[Params], str]
    timeout: float | None = None  # per-probe override of the host's command timeout

    def render(self, params: Params) -> str:
        return self.command(params) if callable(self.command) else self.command


T = TypeVar("T")


@dataclass(frozen=True)
class Facts:
    """What a check's evaluate function sees: probe results by probe name, and the target.

    Parsing a probe's output once per host, whatever number of checks read it: :meth:`parsed`
    (and :meth:`derived` for a value of several inputs) remember what a parser returned for the
    whole host's evaluation (:class:`HostMemo`, shared by the Facts of all the host's checks).
    """

    target: str
    probes: Mapping[str, ProbeResult]
    os: Mapping[str, str] = field(default_factory=dict)  # parsed /etc/os-release
    family: str = ""  # os_family(os): debian, rhel, suse, alpine, arch or ""
    vars: Mapping[str, Any] = field(default_factory=dict)
    #: metrics of this target from earlier runs, ``{name: [(run start, value), ...]}`` oldest first, for
    #: the name prefixes the check declares in ``history`` (forecasts); empty without a run store
    history: Mapping[str, Sequence[tuple[float, float]]] = field(default_factory=dict)
    time: float = 0.0  # when the probes ran (epoch seconds); 0 when unknown
    #: parsed outputs shared by the checks of this host (one per host evaluation; a Facts made
    #: without one gets its own, so it then only remembers for this check)
    memo: HostMemo = field(default_factory=HostMemo, repr=False, compare=False)

    def __getitem__(self, name: str) -> ProbeResult:
        return self.probes[name]

    def get(self, name: str) -> ProbeResult | None:
        return self.probes.get(name)

    def parsed(self, probe: Probe | str, parser: Callable[[str], T]) -> T:
        """``parser(output text of probe)``, computed once per host for this probe output and parser.

        The probe must have a result (KeyError otherwise; look at ``facts.get(name)`` and its ``ok``
        first). ``parser`` must be a module-level function of the text alone (not a lambda or closure
        made per call, which would never be found again; no clock or changing globals: the run may
        hand its value to another host that sent byte-equal output, see
        :class:`~itops.hostmemo.SharedParses`) returning a deeply immutable value: tuples, frozensets,
        ``types.MappingProxyType``, frozen dataclasses (see :func:`ensure_immutable`; TypeError
        otherwise), since every check of the host gets the same object. An exception it raises
        (``ProbeOutputError`` on garbage) is raised again to every check asking.
        """
        result = self.probes[probe if isinstance(probe, str) else probe.name]
        return self.memo.get((parser, result), lambda: parser(result.text), parser)

    def derived(self, fn: Callable[..., T], *args: Hashable) -> T:
        """``fn(*args)``, computed once per host for these (hashable) arguments, e.g. probe results:
        :meth:`parsed` for a value of several inputs. The same rules apply to ``fn`` and its value."""
        return self.memo.get((fn, args), functools.partial(fn, *args), fn)


class CheckMeta(BaseModel):
    """Metadata every check must carry; validated when the registry loads the check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=5)
    severity: Severity
    rationale: str = Field(min_length=10)
    remediation: str = Field(min_length=5)
    frameworks: dict[str, tuple[str, ...]]
    target: TargetKind = "host"
    os_families: tuple[str, ...] = ()  # empty: any; else e.g. ("debian", "rhel")
    params: dict[str, Any] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    #: metric name prefixes (``fs.used_pct:``) whose values from earlier runs of the target the check
    #: reads from ``facts.history`` (forecasts); the runner loads them from the run store
    history: tuple[str, ...] = ()
    iam_actions: tuple[str, ...] = ()  # cloud checks: the read-only IAM actions evaluating it needs
    backup_kinds: tuple[str, ...] = ()  # backup checks: the backup kinds it applies to (empty: every kind)
    #: the machine-applicable fix (``itops remediate``), or None when the check declares none
    fix: Fix | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not CHECK_ID_RE.match(v):
            raise ValueError("check id must look like domain.subject_property (lowercase, dots, underscores)")
        return v

    @field_validator("frameworks")
    @classmethod
    def _frameworks(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = set(v) - set(FRAMEWORKS)
        if unknown:
            raise ValueError(f"unknown framework catalogue(s) {sorted(unknown)}; use {list(FRAMEWORKS)}")
        missing = [f for f in REQUIRED_FRAMEWORKS if not v.get(f)]
        if missing:
            raise ValueError(f"missing framework references for {missing}")
        return v

    @field_validator("iam_actions")
    @classmethod
    def _iam_actions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if not IAM_ACTION_RE.match(a)]
        if bad:
            raise ValueError(f"IAM actions must look like service:Action (no wildcards), not {bad}")
        return v

    @field_validator("os_families")
    @classmethod
    def _os_families(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for fam in v:
            if fam not in OS_FAMILIES:
                close = difflib.get_close_matches(fam, OS_FAMILIES, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown OS family {fam!r}{hint}; use {', '.join(OS_FAMILIES)}")
        return v

    @field_validator("backup_kinds")
    @classmethod
    def _backup_kinds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # the one list of backup kinds is the plugins' (itops.plugins.backup_kinds), read when a check
        # naming kinds is validated, never at import
        from itops.plugins import backup_kinds

        known = backup_kinds()
        bad = [k for k in v if k not in known]
        if bad:
            raise ValueError(f"unknown backup kind(s) {bad}; kinds: {list(known)}")
        return v

    @model_validator(mode="after")
    def _remediation_placeholders(self) -> CheckMeta:
        unknown = sorted({n for n in PARAM_REF_RE.findall(self.remediation) if n not in self.params})
        if unknown:
            raise ValueError(f"remediation names {unknown} in braces, which are not params of this check")
        return self

    @model_validator(mode="after")
    def _fix_placeholders(self) -> CheckMeta:
        unknown = sorted(
            n for n in (self.fix.placeholders() if self.fix else ()) if n not in self.params and n != "resource"
        )
        if unknown:
            raise ValueError(f"fix names {unknown} in braces, which are not params of this check (or resource)")
        return self

    @model_validator(mode="after")
    def _cloud_needs_actions(self) -> CheckMeta:
        if self.target == "aws" and not self.iam_actions:
            raise ValueError("an aws check must list the IAM actions it needs (iam_actions)")
        return self


Evaluate = Callable[[Facts, Params], "Finding | Iterable[Finding]"]
CloudEvaluate = Callable[["CloudFacts", Params], "Finding | Iterable[Finding]"]
BackupEvaluate = Callable[["BackupFacts", Params], "Finding | Iterable[Finding]"]


@dataclass(frozen=True)
class Check:
    """A registered check: metadata, the probes (host) or API collections (cloud) it needs,
    and its pure evaluate function."""

    meta: CheckMeta
    probes: tuple[Probe, ...]
    evaluate_fn: Evaluate | CloudEvaluate | BackupEvaluate
    source: str = ""  # file it was loaded from
    description: str = ""  # the evaluate function's docstring
    # cloud checks: API collections by name, e.g. "s3.buckets"; backup checks: aspects (BACKUP_ASPECTS)
    collections: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.meta.id

    def result(
        self,
        finding: Finding,
        *,
        run_id: str,
        target: str,
        started: float,
        source: str = "",
        excerpt: str = "",
        duration: float = 0.0,
        params: Mapping[str, Any] | None = None,
        remediation: str | None = None,
    ) -> Result:
        """The stored Result of one of this check's findings: the finding plus the check's title, severity,
        frameworks and remediation (filled with ``params``, the effective parameters; or ``remediation``,
        what :meth:`remediation_for` gave for them, when the caller made it once for several findings).
        Not redacted here: the run store's RunWriter.add_many is the one redaction step for every producer
        (hosts, clouds, backups).

        The evidence is what decided the verdict: ``source`` (the command or API call), the finding's
        observed/expected, and as excerpt the finding's ``lines`` (else ``excerpt``, a producer's own
        summary such as a backup observation). Raw probe output is never passed here.
        """
        meta = self.meta
        # every field given: built without the frozen dataclasses' __init__ (one object.__setattr__
        # per field), which cost more than the rest of this per result
        evidence = frozen_instance(
            Evidence,
            source=source,
            excerpt="\n".join(finding.lines) or excerpt,
            observed=finding.observed,
            expected=finding.expected,
        )
        return frozen_instance(
            Result,
            run_id=run_id,
            check_id=meta.id,
            target=target,
            status=finding.status,
            severity=meta.severity,
            message=finding.message,
            title=meta.title,
            resource=finding.resource,
            evidence=evidence,
            frameworks=meta.frameworks,
            remediation=self.remediation_for(params) if remediation is None else remediation,
            started=started,
            duration=duration,
            waiver=None,
            metrics=finding.metrics,
        )

    def remediation_for(self, params: Mapping[str, Any] | None = None) -> str:
        """The remediation text with each ``{param}`` replaced by the parameter's effective value
        (``params``, else the default), so the fix a finding shows is the one that makes it pass."""
        if "{" not in self.meta.remediation:
            return self.meta.remediation
        values = {**self.meta.params, **(params or {})}

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            return _param_text(values[name]) if name in values else m.group(0)

        return PARAM_REF_RE.sub(fill, self.meta.remediation)

    def resolve_params(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Parameter defaults overridden by inventory vars of the same name (type-checked)."""
        resolved: dict[str, Any] = {}
        for name, default in self.meta.params.items():
            value = variables.get(name, default)
            resolved[name] = _coerce_param(self.id, name, value, default)
        return resolved

    def evaluate(self, facts: Facts | CloudFacts | BackupFacts, params: Params | None = None) -> list[Finding]:
        """Run the evaluate function and normalise its output to a list of findings."""
        if isinstance(facts, CloudFacts) != (self.meta.target == "aws"):
            raise TypeError(f"check {self.id} (target {self.meta.target}) got {type(facts).__name__}")
        fn: Callable[[Any, Params], Finding | Iterable[Finding]] = self.evaluate_fn
        out = fn(facts, params if params is not None else dict(self.meta.params))
        findings = [out] if isinstance(out, Finding) else list(out)
        if not findings:
            raise ValueError(f"check {self.id} returned no finding")
        for f in findings:
            if not isinstance(f, Finding):
                raise TypeError(f"check {self.id} returned {type(f).__name__}, not Finding")
        return findings


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _coerce_param(check_id: str, name: str, value: Any, default: Any) -> Any:
    if default is None or value is default:
        return value
    # bool is an int subclass; check it first so "yes"/1 don't slip through as bools
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(default, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    elif isinstance(default, list | tuple) and isinstance(value, list | tuple):
        return list(value)
    elif isinstance(default, dict) and isinstance(value, dict):
        return value
    raise ValueError(
        f"var {name!r} for {check_id} must be {type(default).__name__}, got {type(value).__name__} {value!r}"
    )


def host_check(
    *,
    probes: Sequence[Probe],
    **meta: Any,
) -> Callable[[Evaluate], Check]:
    """Declare a host check; the decorated evaluate function becomes a :class:`Check`.

    Metadata is validated by the registry at load time (not here) so one broken
    check in a user pack is reported and skipped instead of failing the import.
    """

    def wrap(fn: Evaluate) -> Check:
        meta.setdefault("target", "host")
        return _PendingCheck(meta=dict(meta), probes=tuple(probes), fn=fn)  # type: ignore[return-value]

    return wrap


def aws_check(
    *,
    collections: Sequence[str],
    iam_actions: Sequence[str],
    **meta: Any,
) -> Callable[[CloudEvaluate], Check]:
    """Declare an AWS check; the decorated ``evaluate(facts: CloudFacts, params)`` becomes a :class:`Check`.

    ``collections`` names the API collections the check reads (made once per account
    and region, shared by every check); ``iam_actions`` lists exactly the read-only IAM
    actions needed to evaluate it (``itops aws policy`` builds the audit policy from them).
    """

    def wrap(fn: CloudEvaluate) -> Check:
        meta["target"] = "aws"
        meta["iam_actions"] = tuple(iam_actions)
        pending = _PendingCheck(meta=dict(meta), probes=(), fn=fn, collections=tuple(collections))
        return pending  # type: ignore[return-value]

    return wrap


def dr_check(**meta: Any) -> Callable[[Callable[[Any, Params], Finding | Iterable[Finding]]], Check]:
    """Declare a DR-readiness check: ``evaluate(facts, params)`` over a playbook's drill history
    (``itops.playbook.readiness.DrillFacts``), run by ``itops dr check``."""

    def wrap(fn: Callable[[Any, Params], Finding | Iterable[Finding]]) -> Check:
        meta["target"] = "dr"
        return _PendingCheck(meta=dict(meta), probes=(), fn=fn)  # type: ignore[return-value]

    return wrap


def backup_check(
    *,
    needs: Sequence[str],
    kinds: Sequence[str] = (),
    **meta: Any,
) -> Callable[[BackupEvaluate], Check]:
    """Declare a backup check; the decorated ``evaluate(facts: BackupFacts, params)`` becomes a :class:`Check`.

    ``needs`` names the aspects of a backup the check reads (``copies``, ``integrity``,
    ``protection``, ``restore``): the verifier gathers each once per backup, and an aspect
    that could not be gathered makes the check ERROR without calling it. ``kinds`` limits
    the check to some backup kinds (``file``, ``s3`` ...); checks needing ``restore`` run
    only when a restore test runs.
    """
    bad = [n for n in needs if n not in BACKUP_ASPECTS]
    if bad or not needs:
        raise ValueError(f"backup_check needs must name aspects from {list(BACKUP_ASPECTS)}, got {list(needs)}")

    def wrap(fn: BackupEvaluate) -> Check:
        meta["target"] = "backup"
        meta["backup_kinds"] = tuple(kinds)
        pending = _PendingCheck(meta=dict(meta), probes=(), fn=fn, collections=tuple(needs))
        return pending  # type: ignore[return-value]

    return wrap


@dataclass
class _PendingCheck:
    """A declared but not yet validated check (the registry turns it into a Check)."""

    meta: dict[str, Any]
    probes: tuple[Probe, ...]
    fn: Evaluate | CloudEvaluate | BackupEvaluate
    collections: tuple[str, ...] = ()

    def build(self, source: str) -> Check:
        return Check(
            meta=CheckMeta(**self.meta),
            probes=self.probes,
            evaluate_fn=self.fn,
            source=source,
            description=(self.fn.__doc__ or "").strip(),
            collections=self.collections,
        )


def is_pending_check(obj: object) -> TypeGuard[_PendingCheck]:
    return isinstance(obj, _PendingCheck)


# --- cloud facts ------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudFacts:
    """What an AWS check's evaluate function sees: one account's collections."""

    account: str  # inventory name of the cloud account
    account_id: str
    partition: str
    regions: tuple[str, ...]
    collections: Mapping[str, CollectionResult]
    vars: Mapping[str, Any] = field(default_factory=dict)
    backup_buckets: tuple[str, ...] = ()  # bucket names/globs the inventory marks as backups
    covered: frozenset[str] = frozenset()  # instance ids, names and addresses of the inventory's hosts

    def __getitem__(self, name: str) -> CollectionResult:
        return self.collections[name]

    def arn(self, service: str, resource: str, region: str = "") -> str:
        """An ARN in this account, e.g. ``arn("iam", "root")``."""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"

    @property
    def account_arn(self) -> str:
        """The account's root ARN: the resource of account-level findings."""
        return self.arn("iam", "root")

    def region_arn(self, service: str, region: str) -> str:
        """The resource of a region-wide setting (AWS has no ARN for one): ``arn:aws:ec2:eu-west-1:1234:account``."""
        return self.arn(service, "account", "" if region == "global" else region)

    def where(self, region: str = "") -> str:
        """Where a finding is, for messages: ``region eu-west-1, account 1234 (aws-prod)``."""
        acct = f"account {self.account_id} ({self.account})"
        return f"region {region}, {acct}" if region and region != "global" else acct

    def each(
        self, name: str, evaluate: Callable[[CloudResource], Finding | None], *, what: str = "resources"
    ) -> list[Finding]:
        """One finding per resource of collection ``name``.

        A part the resource's evaluation needs but could not read becomes ERROR on
        that resource; a region where the collection failed becomes one ERROR; an
        empty collection is one SKIPPED finding. ``evaluate`` may return None to
        leave a resource out (not in scope).
        """
        coll = self.collections[name]
        findings = self.collection_errors(name)
        for res in coll.resources:
            try:
                found = evaluate(res)
            except NotAssessable as exc:
                found = Finding.error(f"{exc} ({res.name or res.arn}, {self.where(res.region)})", resource=res.arn)
            if found is not None:
                findings.append(found if found.resource else _with_resource(found, res.arn))
        if not findings:
            findings.append(Finding.skipped(f"no {what} in scope in {self.where()}", resource=self.account_arn))
        return findings

    def collection_errors(self, name: str) -> list[Finding]:
        """An ERROR finding for each region where collection ``name`` could not be made."""
        coll = self.collections[name]
        service = name.partition(".")[0]
        return [
            Finding.error(f"{why} ({self.where(region)})", resource=self.region_arn(service, region))
            for region, why in sorted(coll.errors.items())
        ]


def _with_resource(f: Finding, arn: str) -> Finding:
    return replace(f, resource=arn)
