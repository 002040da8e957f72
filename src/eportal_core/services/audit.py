"""The audit trail: who changed what, from where."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import AuditEvent


def record(dbsession: Session, actor: str, action: str, target: str = "", detail: str = "", ip: str = "") -> None:
    """Add one audit event to the current transaction (never put secrets in ``detail``)."""
    dbsession.add(AuditEvent(actor=actor[:128], action=action[:64], target=target[:255], detail=detail, ip=ip[:45]))
