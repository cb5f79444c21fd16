"""Titles of the framework controls the built-in checks reference, for the reports' control rows.

NIST SP 800-53 Rev. 5 titles (a public-domain US government publication) and the ISO/IEC
27001:2022 Annex A control names (the short titles, as widely cited). CIS Benchmark
recommendation numbers differ between benchmarks and versions and their titles are CIS's
licensed text: a CIS control row shows the titles of the itops checks mapped to it instead.
tests/report/test_controls.py fails when a built-in check references a NIST or ISO control
missing here.
"""

from __future__ import annotations

import re

NIST_800_53: dict[str, str] = {
    "AC-2": "Account Management",
    "AC-2(1)": "Account Management | Automated System Account Management",
    "AC-2(3)": "Account Management | Disable Accounts",
    "AC-3": "Access Enforcement",
    "AC-4": "Information Flow Enforcement",
    "AC-6": "Least Privilege",
    "AC-6(1)": "Least Privilege | Authorize Access to Security Functions",
    "AC-6(2)": "Least Privilege | Non-privileged Access for Nonsecurity Functions",
    "AC-6(5)": "Least Privilege | Privileged Accounts",
    "AC-7": "Unsuccessful Logon Attempts",
    "AC-8": "System Use Notification",
    "AC-10": "Concurrent Session Control",
    "AC-11": "Device Lock",
    "AC-12": "Session Termination",
    "AC-17": "Remote Access",
    "AC-21": "Information Sharing",
    "AU-2": "Event Logging",
    "AU-3": "Content of Audit Records",
    "AU-4": "Audit Log Storage Capacity",
    "AU-5": "Response to Audit Logging Process Failures",
    "AU-6": "Audit Record Review, Analysis, and Reporting",
    "AU-8": "Time Stamps",
    "AU-9": "Protection of Audit Information",
    "AU-11": "Audit Record Retention",
    "AU-12": "Audit Record Generation",
    "CA-7": "Continuous Monitoring",
    "CM-2": "Baseline Configuration",
    "CM-3": "Configuration Change Control",
    "CM-5": "Access Restrictions for Change",
    "CM-6": "Configuration Settings",
    "CM-7": "Least Functionality",
    "CM-7(1)": "Least Functionality | Periodic Review",
    "CM-8": "System Component Inventory",
    "CM-14": "Signed Components",
    "CP-2": "Contingency Plan",
    "CP-2(2)": "Contingency Plan | Capacity Planning",
    "CP-2(3)": "Contingency Plan | Resume Mission and Business Functions",
    "CP-4": "Contingency Plan Testing",
    "CP-4(1)": "Contingency Plan Testing | Coordinate with Related Plans",
    "CP-6": "Alternate Storage Site",
    "CP-7": "Alternate Processing Site",
    "CP-9": "System Backup",
    "CP-9(1)": "System Backup | Testing for Reliability and Integrity",
    "CP-9(7)": "System Backup | Dual Authorization for Deletion or Destruction",
    "CP-9(8)": "System Backup | Cryptographic Protection",
    "CP-10": "System Recovery and Reconstitution",
    "IA-2": "Identification and Authentication (Organizational Users)",
    "IA-2(1)": "Identification and Authentication | Multi-factor Authentication to Privileged Accounts",
    "IA-2(2)": "Identification and Authentication | Multi-factor Authentication to Non-privileged Accounts",
    "IA-4": "Identifier Management",
    "IA-5": "Authenticator Management",
    "IA-5(1)": "Authenticator Management | Password-based Authentication",
    "IA-11": "Re-authentication",
    "IR-4": "Incident Handling",
    "MP-7": "Media Use",
    "RA-5": "Vulnerability Monitoring and Scanning",
    "SA-22": "Unsupported System Components",
    "SC-5": "Denial-of-service Protection",
    "SC-5(2)": "Denial-of-service Protection | Capacity, Bandwidth, and Redundancy",
    "SC-7": "Boundary Protection",
    "SC-7(5)": "Boundary Protection | Deny by Default — Allow by Exception",
    "SC-8": "Transmission Confidentiality and Integrity",
    "SC-8(1)": "Transmission Confidentiality and Integrity | Cryptographic Protection",
    "SC-10": "Network Disconnect",
    "SC-12": "Cryptographic Key Establishment and Management",
    "SC-13": "Cryptographic Protection",
    "SC-23": "Session Authenticity",
    "SC-28": "Protection of Information at Rest",
    "SC-28(1)": "Protection of Information at Rest | Cryptographic Protection",
    "SC-36": "Distributed Processing and Storage",
    "SC-45": "System Time Synchronization",
    "SC-45(1)": "System Time Synchronization | Synchronization with Authoritative Time Source",
    "SI-2": "Flaw Remediation",
    "SI-2(2)": "Flaw Remediation | Automated Flaw Remediation Status",
    "SI-4": "System Monitoring",
    "SI-7": "Software, Firmware, and Information Integrity",
    "SI-7(15)": "Software, Firmware, and Information Integrity | Code Authentication",
    "SI-11": "Error Handling",
    "SI-12": "Information Management and Retention",
    "SI-16": "Memory Protection",
}

ISO_27001_2022: dict[str, str] = {
    "A.5.9": "Inventory of information and other associated assets",
    "A.5.10": "Acceptable use of information and other associated assets",
    "A.5.14": "Information transfer",
    "A.5.15": "Access control",
    "A.5.16": "Identity management",
    "A.5.17": "Authentication information",
    "A.5.18": "Access rights",
    "A.5.23": "Information security for use of cloud services",
    "A.5.25": "Assessment and decision on information security events",
    "A.5.29": "Information security during disruption",
    "A.5.30": "ICT readiness for business continuity",
    "A.5.33": "Protection of records",
    "A.7.10": "Storage media",
    "A.8.1": "User endpoint devices",
    "A.8.2": "Privileged access rights",
    "A.8.3": "Information access restriction",
    "A.8.5": "Secure authentication",
    "A.8.6": "Capacity management",
    "A.8.7": "Protection against malware",
    "A.8.8": "Management of technical vulnerabilities",
    "A.8.9": "Configuration management",
    "A.8.12": "Data leakage prevention",
    "A.8.13": "Information backup",
    "A.8.14": "Redundancy of information processing facilities",
    "A.8.15": "Logging",
    "A.8.16": "Monitoring activities",
    "A.8.17": "Clock synchronization",
    "A.8.19": "Installation of software on operational systems",
    "A.8.20": "Networks security",
    "A.8.21": "Security of network services",
    "A.8.22": "Segregation of networks",
    "A.8.24": "Use of cryptography",
    "A.8.32": "Change management",
}

CATALOGUES: dict[str, dict[str, str]] = {"nist-800-53": NIST_800_53, "iso-27001": ISO_27001_2022}
_ENHANCEMENT = re.compile(r"^([A-Z]{2}-\d+)\(\d+\)$")


def control_title(framework: str, control: str) -> str:
    """The control's title, or "" when the catalogue does not know it (an enhancement not listed
    gets its base control's title)."""
    catalogue = CATALOGUES.get(framework, {})
    if control in catalogue:
        return catalogue[control]
    base = _ENHANCEMENT.match(control)
    return catalogue.get(base.group(1), "") if base else ""
