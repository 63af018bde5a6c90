"""Dataset-wide settings: read them, and change them with an audit event.

One row (``DatasetSettings`` pk 1), created on the first change; until then the defaults apply
(descriptors off: the BUS-UCLM workflow, nothing asked beyond contours and labels).
"""

from __future__ import annotations

from django.db import transaction

from annotator import birads, permissions
from annotator.models import AuditEvent, DatasetSettings, DescriptorMode


class SettingsError(ValueError):
    """A refused change; ``code`` and ``http_status`` as the workflow's errors."""

    def __init__(self, message: str, *, code: str = "invalid", http_status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


def current() -> DatasetSettings:
    """The settings row, or an unsaved one holding the defaults (reading never writes)."""
    return DatasetSettings.objects.filter(pk=1).first() or DatasetSettings(pk=1)


def descriptor_mode() -> str:
    return current().descriptors


@transaction.atomic
def set_descriptor_mode(*, mode: str, user) -> DatasetSettings:
    """Turn BI-RADS descriptors off, on or required for submission; audited (from, to, who)."""
    if not permissions.can(user, permissions.CONFIGURE):
        raise SettingsError("only a curator changes the dataset settings", code="not_allowed", http_status=403)
    if mode not in DescriptorMode.values:
        raise SettingsError(
            f"descriptors must be one of {', '.join(DescriptorMode.values)}, got {mode!r}", code="invalid_setting"
        )
    row, _ = DatasetSettings.objects.select_for_update().get_or_create(pk=1)
    before = row.descriptors
    if before != mode:
        row.descriptors = mode
        row.updated_by = user
        row.save()
        AuditEvent.objects.create(
            actor=user, image=None, action="settings", detail={"setting": "descriptors", "from": before, "to": mode}
        )
    return row


def page_context() -> dict:
    """What the annotation and review pages need: the mode, and the lexicon for the side panel."""
    return {"descriptor_mode": descriptor_mode(), "birads_lexicon": birads.lexicon_json()}


def as_json() -> dict:
    row = current()
    return {
        "descriptors": row.descriptors,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
        "lexicon": birads.lexicon_json(),
    }
