"""The audit log as a reader reads it: each event's detail in words, people by name.

The workflow stores details as small JSON objects whose people are user ids (a name can change, an
id cannot); this module turns a page of them into text, resolving every id of the page in one query.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model

from annotator.models import AuditEvent

# Detail keys that hold a user id (workflow.assign: who had the image before, who has it now, the
# second reader of a blind double reading; workflow.reopen: the second reader dropped).
USER_KEYS = ("previous", "annotator", "second_annotator", "second_annotator_dropped")


def _user_ids(events: Iterable[AuditEvent]) -> set[int]:
    return {
        value
        for event in events
        for key, value in (event.detail or {}).items()
        if key in USER_KEYS and isinstance(value, int)
    }


def _phrase(key: str, value: object, names: dict[int, str]) -> str:
    if key in USER_KEYS:
        name = "nobody" if value is None else names.get(value, f"user #{value}")  # type: ignore[arg-type]
        if key == "second_annotator":
            return f"and {name}, read blind"
        if key == "second_annotator_dropped":
            return f"second reader {name} dropped"
        return f"from {name}" if key == "previous" else f"to {name}"
    if key == "lesions":
        return f"{value} lesion{'' if value == 1 else 's'}"
    if key in ("revision", "version"):
        return f"{key} {value}"
    if key == "review":
        return f"review #{value}"
    if key == "based_on":
        return f"based on layer #{value}"
    if key == "checksum" and isinstance(value, str):
        return f"checksum {value[:12]}"
    return f"{key.replace('_', ' ')}: {value}"


# The order phrases read best in ("from alice to dave", "revision 2, version 3, 1 lesion").
ORDER = (
    "previous",
    "annotator",
    "second_annotator",
    "revision",
    "version",
    "lesions",
    "review",
    "based_on",
    "setting",
    "from",
    "to",
)


def describe(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The events, each with ``detail_text``; one query for the names of every user they mention."""
    events = list(events)
    ids = _user_ids(events)
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
    for event in events:
        detail = event.detail or {}
        keys = sorted(detail, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))
        phrases = [_phrase(k, detail[k], names) for k in keys]
        if "previous" in detail and "annotator" in detail:  # "from alice to erin", one phrase
            phrases[:2] = [" ".join(phrases[:2])]
        event.detail_text = ", ".join(phrases)
    return events
