"""The framework catalogues checks reference: which benchmark or standard, which version.

A check's ``frameworks`` maps a catalogue key to the control or recommendation numbers it
implements, e.g. ``{"cis-debian-12": ["5.1.20"], "nist-800-53": ["AC-6(2)"], ...}``. CIS
numbers differ between benchmarks and between versions of one benchmark (PermitRootLogin is
5.2.7 in CIS Debian 11 and 5.1.20 in CIS Debian 12 v1.1.0), so a number is only meaningful with
its catalogue and version: every key is one catalogue here, and reports print
``cis-debian-12 v1.1.0: 5.1.20``. A *family* (``cis``) selects all its catalogues in
``--framework`` filters. CheckMeta refuses keys not in :data:`CATALOGUES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Catalogue:
    key: str
    title: str
    version: str
    family: str

    @property
    def label(self) -> str:
        """``cis-debian-12 v1.1.0``."""
        return f"{self.key} {self.version}"

    @property
    def name(self) -> str:
        """``CIS Debian Linux 12 Benchmark v1.1.0`` (report section headings)."""
        return f"{self.title} {self.version}"


#: Every catalogue a check may reference, in the order reports list them.
CATALOGUES: dict[str, Catalogue] = {
    c.key: c
    for c in (
        Catalogue("cis-debian-12", "CIS Debian Linux 12 Benchmark", "v1.1.0", "cis"),
        Catalogue("cis-rhel-9", "CIS Red Hat Enterprise Linux 9 Benchmark", "v2.0.0", "cis"),
        Catalogue("cis-aws-foundations", "CIS Amazon Web Services Foundations Benchmark", "v3.0.0", "cis"),
        Catalogue("cis-controls", "CIS Critical Security Controls", "v8", "cis"),
        Catalogue("nist-800-53", "NIST SP 800-53", "Rev. 5", "nist"),
        Catalogue("iso-27001", "ISO/IEC 27001 Annex A", "2022", "iso"),
    )
}
#: Catalogues every check must reference (a check may add CIS numbers where a benchmark has one).
REQUIRED = ("nist-800-53", "iso-27001")
#: Names ``--framework`` accepts: a family (all its catalogues) or one catalogue.
FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(k for k, c in CATALOGUES.items() if c.family == family)
    for family in dict.fromkeys(c.family for c in CATALOGUES.values())
}
CHOICES: tuple[str, ...] = (*FAMILIES, *CATALOGUES)


def matches(key: str, wanted: str | None) -> bool:
    """Whether a framework key is selected by ``--framework wanted`` (a family or a key; None: all).
    Runs stored before catalogues were labelled carry the bare key ``cis``: the family selects it."""
    return wanted is None or key == wanted or key in FAMILIES.get(wanted, ())


def label(key: str) -> str:
    """``cis-debian-12 v1.1.0``; a key not in the table (an old stored run) as it was written."""
    cat = CATALOGUES.get(key)
    return cat.label if cat else key


def name(key: str) -> str:
    """The catalogue's title and version for headings; the key itself when unknown."""
    cat = CATALOGUES.get(key)
    return cat.name if cat else key


def reference(key: str, ref: str) -> str:
    """``cis-debian-12 v1.1.0: 5.1.20``."""
    return f"{label(key)}: {ref}"


def references(frameworks: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    """Every reference of a result's ``frameworks.items()`` as :func:`reference` text."""
    return [reference(key, ref) for key, refs in frameworks for ref in refs]


def describe(keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{key: {"title", "version"}}`` of the known keys among ``keys`` (machine-readable reports)."""
    return {k: {"title": CATALOGUES[k].title, "version": CATALOGUES[k].version} for k in keys if k in CATALOGUES}
