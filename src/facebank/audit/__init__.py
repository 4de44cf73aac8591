"""Audit a labelled folder (one sub-folder per person): duplicates, label conflicts, photos without
or with several faces, mislabeled photos and outliers, and quality problems; report them, or move
the flagged photos to a quarantine folder (with an undo list).

    from facebank.audit import audit_folder
    result = audit_folder("photos/")
    for f in result.findings:
        print(f.kind, f.path, f.detail)
"""

from facebank.audit.base import KINDS, AuditConfig, Check, Finding
from facebank.audit.run import AuditResult, audit_folder

__all__ = ["KINDS", "AuditConfig", "AuditResult", "Check", "Finding", "audit_folder"]
