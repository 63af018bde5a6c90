"""The two-reader review workflow: the only code that changes an image's or a layer's status.

Each public function is one atomic transaction: it locks the image row (SELECT ... FOR NO KEY
UPDATE: the weaker lock, which lets other transactions' foreign-key checks on the row through, so
an audit event or a lesion inserted elsewhere never deadlocks against it; a save locks only its
layer row, see ``save_draft``),
checks the transition against ``TRANSITIONS`` and the actor against ``annotator.permissions``,
makes the change and writes an ``AuditEvent``. Errors are ``WorkflowError`` subclasses that carry
an HTTP status, so views translate them without deciding anything themselves.

    redaction ──confirm_redaction──▶ new     (DICOM imports only: a curator blacks out burned-in text)

    new ──start──▶ draft ──submit──▶ submitted ──approve / edit_and_approve──▶ approved
                    ▲  └─save_draft─┘      │                                      │
                    └──────start────── returned ◀──────────send_back──────────────┘ (reopen)

Blind double reading (an image assigned to two readers, ``Image.second_annotator`` set): each
reader has their own layer (``MaskLayer.reader`` 1 or 2) and neither sees the other's
(``annotator.permissions.blind_layers``) until a consensus is approved.

    new ──start_reading──▶ double_reading ──finish_reading──▶ adjudication ──adjudicate / adjudicate_edit──▶ approved
                            │  ▲   (start_reading,                   │
                            │  │    save_draft, submit_reading:      │
                            └──┘    either reader, status kept)      │
                               ▲                                     │
                               └────────return_reading───────────────┘ (one or both readers' layers)

``submit_reading`` is the first reader's submit, ``finish_reading`` the second's (the same API call;
the workflow picks the row under the image lock, so two submits at once give one adjudication).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from annotator import agreement_records, birads, dataset_settings, geometry, permissions, redaction
from annotator.models import (
    AuditEvent,
    DescriptorMode,
    Image,
    ImageData,
    LayerStatus,
    Lesion,
    MaskLayer,
    Remark,
    Review,
    Status,
)
from annotator.prepared import Prepared

UNCHANGED = None  # a "to" status of TRANSITIONS: the action keeps the status it started from
# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "confirm_redaction": (frozenset({Status.REDACTION}), Status.NEW),
    "start": (frozenset({Status.NEW, Status.RETURNED}), Status.DRAFT),
    "save_draft": (frozenset({Status.DRAFT, Status.DOUBLE_READING}), UNCHANGED),
    "submit": (frozenset({Status.DRAFT}), Status.SUBMITTED),
    "approve": (frozenset({Status.SUBMITTED}), Status.APPROVED),
    "edit_and_approve": (frozenset({Status.SUBMITTED}), Status.APPROVED),
    "send_back": (frozenset({Status.SUBMITTED}), Status.RETURNED),
    "reopen": (frozenset({Status.APPROVED}), Status.RETURNED),
    # blind double reading
    "start_reading": (frozenset({Status.NEW, Status.DOUBLE_READING}), Status.DOUBLE_READING),
    "submit_reading": (frozenset({Status.DOUBLE_READING}), Status.DOUBLE_READING),  # the first of two
    "finish_reading": (frozenset({Status.DOUBLE_READING}), Status.ADJUDICATION),  # the second
    "adjudicate": (frozenset({Status.ADJUDICATION}), Status.APPROVED),  # approve one reader's layer
    "adjudicate_edit": (frozenset({Status.ADJUDICATION}), Status.APPROVED),  # a new layer from one, or both
    "return_reading": (frozenset({Status.ADJUDICATION}), Status.DOUBLE_READING),  # one or both back
}
# Actions of one reading mode only (the rest, save_draft, reopen, confirm_redaction, serve both).
SINGLE_READING_ACTIONS = frozenset({"start", "submit", "approve", "edit_and_approve", "send_back"})
DOUBLE_READING_ACTIONS = frozenset(
    {"start_reading", "submit_reading", "finish_reading", "adjudicate", "adjudicate_edit", "return_reading"}
)
# Which permission each action needs (see annotator.permissions).
TRANSITION_PERMISSION = {
    "confirm_redaction": permissions.REDACT,
    "start": permissions.ANNOTATE,
    "save_draft": permissions.ANNOTATE,
    "submit": permissions.ANNOTATE,
    "approve": permissions.REVIEW,
    "edit_and_approve": permissions.REVIEW,
    "send_back": permissions.REVIEW,
    "reopen": permissions.REOPEN,
    "start_reading": permissions.ANNOTATE,
    "submit_reading": permissions.ANNOTATE,
    "finish_reading": permissions.ANNOTATE,
    "adjudicate": permissions.REVIEW,
    "adjudicate_edit": permissions.REVIEW,
    "return_reading": permissions.REVIEW,
}
MAX_LESIONS = geometry.MAX_LESIONS
MAX_NOTE = 4000


class WorkflowError(Exception):
    http_status = 400
    code = "invalid"

    def __init__(self, message: str, **extra: Any):
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotAllowed(WorkflowError):
    http_status = 403
    code = "not_allowed"


class NotFound(WorkflowError):
    """No such object, or none the user may see (the same answer, so nothing is learnt)."""

    http_status = 404
    code = "not_found"


class InvalidTransition(WorkflowError):
    http_status = 409
    code = "invalid_transition"


class StaleVersion(WorkflowError):
    """The client edited an older version of the layer; nothing was changed."""

    http_status = 409
    code = "stale_version"


class InvalidContent(WorkflowError):
    http_status = 400
    code = "invalid_content"


@dataclass
class LayerContent:
    """What a reader draws and flags on one image, already validated (by the API's input
    serializers or, for imports, by construction from a mask): the workflow does not re-check it."""

    lesions: list[geometry.Lesion]
    is_normal: bool = False
    doppler: bool = False
    marks: bool = False
    combined: bool = False
    note: str = ""
    assessment: str = ""  # BI-RADS category (annotator.birads.ASSESSMENT_CATEGORIES), "" when none


@dataclass
class RemarkContent:
    """A reviewer's remark, validated (text, point inside the image); pinned to a point, a lesion or both."""

    text: str
    x: float | None = None
    y: float | None = None
    lesion_id: int | None = None


def _now():
    return timezone.now()


# --- helpers ----------------------------------------------------------------------------------


def _lock(image_id: int) -> Image:
    try:
        return Image.objects.select_for_update(no_key=True).get(pk=image_id)
    except Image.DoesNotExist:
        raise WorkflowError("no such image") from None


def _lock_for_layer(layer_id: int) -> Image:
    """Lock the image a layer belongs to (the image row is the lock for everything about it)."""
    try:
        return Image.objects.select_for_update(of=("self",), no_key=True).get(layers__id=layer_id)
    except Image.DoesNotExist:
        raise WorkflowError("no such layer") from None


def _check(action: str, image: Image, user) -> str:
    allowed_from, to = TRANSITIONS[action]
    if not permissions.can(user, TRANSITION_PERMISSION[action], image):
        raise NotAllowed(f"you may not {action.replace('_', ' ')} {image.name}")
    if image.status not in allowed_from:
        raise InvalidTransition(
            f"cannot {action.replace('_', ' ')} {image.name}: it is {image.status}", status=image.status
        )
    double = image.second_annotator_id is not None
    if (double and action in SINGLE_READING_ACTIONS) or (not double and action in DOUBLE_READING_ACTIONS):
        mode = "read blind by two readers" if double else "read by one reader"
        raise InvalidTransition(f"cannot {action.replace('_', ' ')} {image.name}: it is {mode}", status=image.status)
    return image.status if to is UNCHANGED else to


def _audit(actor, image: Image, action: str, before: str, after: str, layer=None, **detail) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor, image=image, layer=layer, action=action, from_status=before, to_status=after, detail=detail
    )


def _open_layer(image: Image) -> MaskLayer | None:
    return (
        MaskLayer.objects.select_for_update(no_key=True)
        .filter(image=image, status__in=[LayerStatus.DRAFT, LayerStatus.SUBMITTED])
        .first()
    )


def _latest_layer(image: Image) -> MaskLayer | None:
    return MaskLayer.objects.filter(image=image).order_by("-revision").first()


def _next_revision(image: Image) -> int:
    latest = _latest_layer(image)
    return 1 if latest is None else latest.revision + 1


CONTENT_FIELDS = ["is_normal", "doppler", "marks", "combined", "note", "assessment"]


# A test reads the UPDATE's SET list against the model: a Lesion column left out of it would keep
# the previous save's value on an autosave.
_LESION_CTES = f"""
v AS (
    SELECT (t.ord - 1)::int AS index, t.e->>'label' AS label, t.e->'points' AS points, t.e->'holes' AS holes,
           t.e->'descriptors' AS descriptors
    FROM jsonb_array_elements(%(lesions)s::jsonb) WITH ORDINALITY AS t(e, ord)
), updated AS (
    UPDATE {Lesion._meta.db_table} AS l
    SET label = v.label, points = v.points, holes = v.holes, area_px = NULL, descriptors = v.descriptors
    FROM v WHERE l.layer_id = %(layer)s AND l.index = v.index
    RETURNING l.id, l.index
), removed AS (
    DELETE FROM {Lesion._meta.db_table} WHERE layer_id = %(layer)s AND index >= %(count)s
), added AS (
    INSERT INTO {Lesion._meta.db_table} (layer_id, index, label, points, holes, descriptors)
    SELECT %(layer)s, v.index, v.label, v.points, v.holes, v.descriptors FROM v
    WHERE v.index NOT IN (SELECT index FROM {Lesion._meta.db_table} WHERE layer_id = %(layer)s)
    RETURNING id, index
)"""
_LESION_IDS = "SELECT id, index FROM updated UNION ALL SELECT id, index FROM added ORDER BY index"
_WRITE_LESIONS_SQL = f"WITH {_LESION_CTES}\n{_LESION_IDS}"

# An autosave's whole write in one statement: the lesions as above, the layer's content, version
# and time, and the audit event. (Data-modifying CTEs all run, whether the final SELECT reads them
# or not; they touch different tables, so no part sees another's changes.)
_SAVE_DRAFT_SQL = f"""WITH {_LESION_CTES}, layer AS (
    UPDATE {MaskLayer._meta.db_table}
    SET {", ".join(f"{MaskLayer._meta.get_field(name).column} = %({name})s" for name in CONTENT_FIELDS)},
        version = %(version)s, updated_at = %(now)s
    WHERE id = %(layer)s
), audit AS (
    INSERT INTO {AuditEvent._meta.db_table}
        (created_at, actor_id, image_id, layer_id, action, from_status, to_status, detail)
    VALUES (%(now)s, %(actor)s, %(image)s, %(layer)s, 'save_draft', %(status)s, %(status)s, %(detail)s::jsonb)
)
{_LESION_IDS}"""


def _write_lesions(
    layer: MaskLayer, lesions: Sequence[geometry.Lesion], *, statement: Prepared | None = None, **params
) -> list[Lesion]:
    """Make the layer's lesions ``lesions``, in one statement. Areas are left empty: a draft's
    area is shown by the browser and counted on the server when the layer is submitted or
    approved (``_count_areas``).

    Lesion ``i`` keeps its row and is updated in place; rows past the new count are deleted and
    new indexes inserted. An autosave (the same lesions, moved) is then an UPDATE that PostgreSQL
    does as a heap-only tuple update: no index entry per save, where deleting and re-inserting
    the rows left dead index entries that every later save of the layer walked through until
    autovacuum ran (thousands per minute at autosave rates). All parts of the statement see the
    rows as they were before it, so the three never touch the same row. Only open drafts are
    written: remarks pin lesions of submitted layers, which are never rewritten.

    ``statement`` may be one that does more in the same round trip (``_SAVE_DRAFT``), with its
    further ``params``.
    """
    payload = [
        {"label": les.label, "points": les.points, "holes": les.holes, "descriptors": les.descriptors or {}}
        for les in lesions
    ]
    params = {**params, "layer": layer.pk, "count": len(payload), "lesions": json.dumps(payload)}
    with connection.cursor() as cursor:
        if statement is None:
            cursor.execute(_WRITE_LESIONS_SQL, params)
        else:
            statement.execute(cursor, params)
        ids = [row[0] for row in cursor.fetchall()]
    rows = [
        Lesion(
            id=pk,
            layer=layer,
            index=i,
            label=les.label,
            points=les.points,
            holes=les.holes,
            area_px=None,
            descriptors=les.descriptors or {},
        )
        for pk, (i, les) in zip(ids, enumerate(lesions), strict=True)
    ]
    for row in rows:
        row._state.adding, row._state.db = False, connection.alias
    # The caller's copy of the layer serialises these rows without reading them back, as if they
    # had been prefetched (a further filter or order_by on it queries the database as usual).
    cached = Lesion.objects.filter(layer_id=layer.pk)
    cached._result_cache = rows
    cached._prefetch_done = True
    layer._prefetched_objects_cache = {"lesions": cached}
    return rows


def _apply_content(layer: MaskLayer, content: LayerContent) -> None:
    for name in CONTENT_FIELDS:
        setattr(layer, name, getattr(content, name))
    _write_lesions(layer, content.lesions)


def _count_areas(layer: MaskLayer) -> None:
    """Store each lesion's pixel count (the COCO ``area``) once the layer stops changing."""
    image = layer.image
    lesions = list(Lesion.objects.filter(layer=layer, area_px__isnull=True))
    for lesion in lesions:
        lesion.area_px = geometry.pixel_area(lesion.as_geometry(), image.width, image.height)
    Lesion.objects.bulk_update(lesions, ["area_px"])


def _copy_layer(source: MaskLayer, *, author, revision: int, origin: str, status: str, reader: int = 1) -> MaskLayer:
    layer = MaskLayer.objects.create(
        image=source.image,
        author=author,
        revision=revision,
        reader=reader,
        based_on=source,
        source=origin,
        status=status,
        **{name: getattr(source, name) for name in CONTENT_FIELDS},
    )
    Lesion.objects.bulk_create(
        Lesion(
            layer=layer,
            index=les.index,
            label=les.label,
            points=les.points,
            holes=les.holes,
            area_px=les.area_px,
            descriptors=les.descriptors,
        )
        for les in source.lesions.all()
    )
    return layer


def _check_descriptors(lesions: Sequence[geometry.Lesion], assessment: str) -> None:
    """When the curator requires BI-RADS descriptors: every lesion fully described and the image
    assessed, else one error naming each lesion (as numbered on screen) and what it lacks."""
    if dataset_settings.descriptor_mode() != DescriptorMode.REQUIRED:
        return
    gaps = []
    for i, lesion in enumerate(lesions):
        missing = birads.missing_descriptors(lesion.descriptors or {})
        if missing:
            gaps.append({"lesion": i, "label": lesion.label, "missing": missing})
    if not gaps and assessment:
        return
    parts = []
    for g in gaps:
        names = ", ".join(birads.LEXICON[k].label.lower() for k in g["missing"])
        parts.append(f"lesion {g['lesion'] + 1} ({g['label']}) lacks {names}")
    if not assessment:
        parts.append("the image lacks its BI-RADS assessment category")
    extra: dict[str, Any] = {"rule": "descriptors_required", "missing": gaps, "assessment_missing": not assessment}
    if gaps:
        extra["lesion"] = gaps[0]["lesion"]
    raise InvalidContent("BI-RADS descriptors are required for submission: " + "; ".join(parts), **extra)


def _send_back_comment(comment: str | None, whom: str) -> str:
    """A send-back (of a submission or of a blind reading) must say what to change."""
    comment = (comment or "").strip()
    if not comment:
        raise InvalidContent(f"sending back needs a comment that tells the {whom} what to change")
    return comment


def _check_version(layer: MaskLayer, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != layer.version:
        raise StaleVersion(
            f"{layer.image.name} was changed elsewhere (you edited version {expected_version}, "
            f"it is now version {layer.version}); reload to see the current drawing",
            layer_id=layer.pk,
            version=layer.version,
        )


# --- transitions ------------------------------------------------------------------------------


@transaction.atomic
def start(*, image_id: int, user) -> MaskLayer:
    """Open a draft for the assigned annotator; after a send-back it copies the returned layer.

    Opening an image that already has the user's draft returns that draft (idempotent).
    """
    image = _lock(image_id)
    if image.status == Status.DRAFT:
        layer = _open_layer(image)
        if layer is not None and layer.author_id == user.pk and permissions.can(user, permissions.ANNOTATE, image):
            return layer
    before = image.status
    after = _check("start", image, user)
    # The layer sent back (or the reopened consensus): the latest returned one. (After a reopened
    # double reading the latest layer may be the reader's layer that was not chosen.)
    previous = MaskLayer.objects.filter(image=image, status=LayerStatus.RETURNED).order_by("-revision").first()
    revision = _next_revision(image)
    if previous is not None and before == Status.RETURNED:
        layer = _copy_layer(
            previous, author=user, revision=revision, origin=MaskLayer.Source.DRAWN, status=LayerStatus.DRAFT
        )
    else:
        layer = MaskLayer.objects.create(image=image, author=user, revision=revision, status=LayerStatus.DRAFT)
    image.status = after
    image.save(update_fields=["status", "updated_at"])
    _audit(user, image, "start", before, after, layer, revision=revision)
    return layer


# The draft and its image, read and the layer row locked in one hand-written statement: a save is
# the most frequent request, and building this join through the ORM cost more than running it.
# JSON columns of the image are left out (nothing in a save reads them; they load if touched).
_LAYER_FIELDS = list(MaskLayer._meta.concrete_fields)
_IMAGE_FIELDS = [f for f in Image._meta.concrete_fields if not isinstance(f, models.JSONField)]
_LOCK_LAYER_SQL = (
    "SELECT "
    + ", ".join([*(f"l.{f.column}" for f in _LAYER_FIELDS), *(f"i.{f.column}" for f in _IMAGE_FIELDS)])
    + f" FROM {MaskLayer._meta.db_table} AS l JOIN {Image._meta.db_table} AS i ON i.id = l.image_id"
    + " WHERE l.id = %(layer)s FOR NO KEY UPDATE OF l"
)
# Both statements of an autosave are planned once per connection (annotator.prepared).
_LOCK_LAYER = Prepared("busreview_lock_layer", _LOCK_LAYER_SQL)
_SAVE_DRAFT = Prepared("busreview_save_draft", _SAVE_DRAFT_SQL)


def _db_value(model, name: str, value):
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def _lock_layer_with_image(layer_id: int) -> MaskLayer | None:
    """The layer (row locked) with its image attached, as ``select_related("image")`` gives it."""
    with connection.cursor() as cursor:
        _LOCK_LAYER.execute(cursor, {"layer": layer_id})
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(_LAYER_FIELDS)
    layer = MaskLayer.from_db(connection.alias, [f.attname for f in _LAYER_FIELDS], row[:n])
    layer.image = Image.from_db(connection.alias, [f.attname for f in _IMAGE_FIELDS], row[n:])
    return layer


@transaction.atomic
def save_draft(
    *,
    layer_id: int,
    user,
    content: LayerContent | Callable[[Image], LayerContent],
    expected_version: int,
) -> MaskLayer:
    """Replace the draft's lesions and flags; refuses a save based on an older version.

    ``content`` may be a function of the image that validates the request's drawing: it is called
    only once the user is known to be allowed to edit this draft, so a user who may not edit it
    never gets the (bounded, but not free) geometry checks run for them.

    Two statements, prepared once per connection: one SELECT that locks the layer row and reads
    its image with it, and one that writes everything (``_SAVE_DRAFT_SQL``: the lesions in place,
    the layer's content and version, the audit event).

    The lock is the layer's row, not the image's: every action that changes a draft (submit,
    assign, another save) updates this row, so PostgreSQL re-reads it after waiting for the lock
    and the version and status checked below are the committed ones. (Locking only the image
    row in the same statement would not do: a save does not update the image row, so a waiting
    save would go on with the layer as it was before the other save committed.) Actions that
    lock the image first and then this row cannot deadlock with it: a save holds one lock only.
    """
    layer = _lock_layer_with_image(layer_id)
    if layer is None:
        raise NotFound("no such layer")
    image = layer.image
    if not permissions.can(user, permissions.VIEW, image) or not permissions.may_see_layer(user, layer):
        raise NotFound("no such layer")
    if not permissions.may_edit_layer(user, layer):
        raise NotAllowed(f"only the assigned annotator edits the draft of {image.name}")
    layer.author = user  # may_edit_layer: the author is the user
    if layer.status != LayerStatus.DRAFT:
        raise InvalidTransition(
            f"revision {layer.revision} of {image.name} is {layer.status} and can no longer be edited",
            status=image.status,
            layer_status=layer.status,
        )
    _check("save_draft", image, user)
    _check_version(layer, expected_version)
    if callable(content):
        content = content(image)
    for name in CONTENT_FIELDS:
        setattr(layer, name, getattr(content, name))
    layer.version += 1
    layer.updated_at = timezone.now()
    _write_lesions(
        layer,
        content.lesions,
        statement=_SAVE_DRAFT,
        **{name: _db_value(MaskLayer, name, getattr(content, name)) for name in CONTENT_FIELDS},
        version=layer.version,
        now=layer.updated_at,
        actor=user.pk,
        image=image.pk,
        status=image.status,
        detail=json.dumps({"version": layer.version, "lesions": len(content.lesions)}),
    )
    return layer


@transaction.atomic
def submit(*, layer_id: int, user, expected_version: int | None = None) -> MaskLayer:
    image = _lock_for_layer(layer_id)
    layer = MaskLayer.objects.select_for_update(of=("self",), no_key=True).select_related("author").get(pk=layer_id)
    layer.image = image
    if not permissions.may_edit_layer(user, layer):
        raise NotAllowed(f"only the assigned annotator submits {image.name}")
    before = image.status
    after = _check("submit", image, user)
    _submit_draft(image, layer, after, expected_version)
    _audit(user, image, "submit", before, after, layer, revision=layer.revision)
    return layer


def _submit_draft(image: Image, layer: MaskLayer, after: str, expected_version: int | None) -> None:
    """What a submit and a blind reader's submit share: the layer is still a draft at the version
    the reader saw, not empty, described when descriptors are required; its areas are counted, it
    is submitted and the image moves to ``after``."""
    if layer.status != LayerStatus.DRAFT:
        raise InvalidTransition(f"revision {layer.revision} is {layer.status}", status=image.status)
    _check_version(layer, expected_version)
    if not layer.is_normal and not layer.lesions.exists():
        raise InvalidContent(
            "draw at least one lesion or mark the image normal before submitting", rule="empty_submission"
        )
    _check_descriptors(layer.geometry_lesions(), layer.assessment)
    _count_areas(layer)
    layer.status = LayerStatus.SUBMITTED
    layer.submitted_at = _now()
    layer.version += 1
    layer.save()
    image.status = after
    image.save(update_fields=["status", "updated_at"])


def _submitted_layer(image: Image) -> MaskLayer:
    layer = _open_layer(image)
    if layer is None or layer.status != LayerStatus.SUBMITTED:
        raise InvalidTransition(f"{image.name} has no submitted layer", status=image.status)
    return layer


def _add_remarks(review: Review, remarks: Sequence[RemarkContent], layer: MaskLayer) -> None:
    lesion_ids = set(layer.lesions.values_list("pk", flat=True))
    for i, remark in enumerate(remarks):
        if remark.lesion_id is not None and remark.lesion_id not in lesion_ids:
            raise InvalidContent(f"remark {i} names a lesion that is not in the reviewed layer")
    Remark.objects.bulk_create(
        Remark(review=review, x=r.x, y=r.y, lesion_id=r.lesion_id, text=r.text.strip()) for r in remarks
    )


def _review(image: Image, layer: MaskLayer, user, decision: str, comment: str, dice: float | None = None) -> Review:
    """The decision record; ``annotator`` is denormalised so the database can refuse self-review."""
    return Review.objects.create(
        image=image,
        layer=layer,
        reviewer=user,
        annotator=layer.author,
        decision=decision,
        comment=(comment or "")[:4000],
        dice=dice,
    )


def _reviewer_edit(image: Image, user, content: LayerContent, *, based_on: MaskLayer | None) -> MaskLayer:
    """A second reader's own drawing (an edit before approval, or an adjudicator's), as a new layer
    they author; the caller makes it the consensus."""
    edited = MaskLayer.objects.create(
        image=image,
        author=user,
        revision=_next_revision(image),
        based_on=based_on,
        source=MaskLayer.Source.REVIEWER_EDIT,
        status=LayerStatus.DRAFT,
        submitted_at=_now(),
    )
    edited.image = image
    _apply_content(edited, content)
    edited.save()
    return edited


def _approve_with(image: Image, layer: MaskLayer, review: Review | None = None) -> None:
    """Make ``layer`` the consensus; with the ``review`` that approved it, store the agreement of
    the reviewed layer and ``layer`` (an import approved as such has no review and no pair)."""
    _count_areas(layer)
    layer.status = LayerStatus.APPROVED
    layer.save(update_fields=["status", "updated_at"])
    image.consensus = layer
    image.doppler, image.marks, image.combined = layer.doppler, layer.marks, layer.combined
    image.status = Status.APPROVED
    image.save()
    if review is not None:
        agreement_records.record(review, layer)


@transaction.atomic
def approve(*, image_id: int, user, comment: str = "", expected_version: int | None = None) -> Review:
    image = _lock(image_id)
    before = image.status
    _check("approve", image, user)
    layer = _submitted_layer(image)
    _check_version(layer, expected_version)
    review = _review(image, layer, user, Review.Decision.APPROVED, comment, dice=1.0)
    _approve_with(image, layer, review)
    _audit(user, image, "approve", before, image.status, layer, review=review.pk)
    return review


@transaction.atomic
def edit_and_approve(
    *, image_id: int, user, content: LayerContent, comment: str = "", expected_version: int | None = None
) -> Review:
    """The reviewer's corrected drawing becomes a new layer, authored by the reviewer, and the consensus."""
    image = _lock(image_id)
    before = image.status
    _check("edit_and_approve", image, user)
    submitted = _submitted_layer(image)
    _check_version(submitted, expected_version)
    if not content.is_normal and not content.lesions:
        raise InvalidContent("draw at least one lesion or mark the image normal", rule="empty_submission")
    _check_descriptors(content.lesions, content.assessment)
    # Its Dice is set with the stored agreement (agreement_records.record, at approval).
    review = _review(image, submitted, user, Review.Decision.EDITED_APPROVED, comment)
    submitted.status = LayerStatus.SUPERSEDED
    submitted.save(update_fields=["status", "updated_at"])
    edited = _reviewer_edit(image, user, content, based_on=submitted)
    _approve_with(image, edited, review)
    _audit(user, image, "edit_and_approve", before, image.status, edited, review=review.pk, based_on=submitted.pk)
    return review


@transaction.atomic
def send_back(
    *,
    image_id: int,
    user,
    comment: str,
    remarks: Sequence[RemarkContent] = (),
    expected_version: int | None = None,
) -> Review:
    image = _lock(image_id)
    before = image.status
    after = _check("send_back", image, user)
    comment = _send_back_comment(comment, "annotator")
    layer = _submitted_layer(image)
    _check_version(layer, expected_version)
    review = _review(image, layer, user, Review.Decision.RETURNED, comment)
    _add_remarks(review, remarks, layer)
    layer.status = LayerStatus.RETURNED
    layer.save(update_fields=["status", "updated_at"])
    image.status = after
    image.save(update_fields=["status", "updated_at"])
    _audit(user, image, "send_back", before, after, layer, review=review.pk)
    return review


@transaction.atomic
def reopen(*, image_id: int, user, reason: str) -> Review:
    """A curator reopens an approved image; the annotator reworks it from the consensus."""
    image = _lock(image_id)
    before = image.status
    after = _check("reopen", image, user)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidContent("reopening needs a reason")
    layer = image.consensus
    review = _review(image, layer, user, Review.Decision.REOPENED, reason)
    layer.status = LayerStatus.RETURNED
    layer.save(update_fields=["status", "updated_at"])
    # A reopened double reading is reworked in the single loop, by its first reader, from the consensus.
    dropped = image.second_annotator_id
    image.status = after
    image.consensus = None
    image.second_annotator = None
    image.save()
    extra = {"second_annotator_dropped": dropped} if dropped is not None else {}
    _audit(user, image, "reopen", before, after, layer, review=review.pk, **extra)
    return review


# --- blind double reading -----------------------------------------------------------------------


def _readings(image: Image) -> dict[int, MaskLayer]:
    """The open (draft or submitted) layer of each reader slot, locked."""
    layers = (
        MaskLayer.objects.select_for_update(of=("self",), no_key=True)
        .filter(image=image, status__in=[LayerStatus.DRAFT, LayerStatus.SUBMITTED])
        .select_related("author")
    )
    return {layer.reader: layer for layer in layers}


@transaction.atomic
def start_reading(*, image_id: int, user) -> MaskLayer:
    """Open (or resume) a reader's own draft of an image read blind; after a return from
    adjudication it copies that reader's returned layer (never the other reader's)."""
    image = _lock(image_id)
    slot = image.reader_slot(user)
    own = _readings(image).get(slot) if image.is_double_read else None
    if (
        own is not None
        and own.status == LayerStatus.DRAFT
        and own.author_id == user.pk
        and permissions.can(user, permissions.ANNOTATE, image)
    ):
        return own
    before = image.status
    after = _check("start_reading", image, user)
    if own is not None:
        raise InvalidTransition(
            f"your reading of {image.name} is submitted; it waits for the other reader and the adjudicator",
            status=image.status,
        )
    previous = MaskLayer.objects.filter(image=image, reader=slot, author=user).order_by("-revision").first()
    revision = _next_revision(image)
    if previous is not None and previous.status == LayerStatus.RETURNED:
        layer = _copy_layer(
            previous,
            author=user,
            revision=revision,
            origin=MaskLayer.Source.DRAWN,
            status=LayerStatus.DRAFT,
            reader=slot,
        )
    else:
        layer = MaskLayer.objects.create(
            image=image, author=user, revision=revision, reader=slot, status=LayerStatus.DRAFT
        )
    image.status = after
    image.save(update_fields=["status", "updated_at"])
    _audit(user, image, "start_reading", before, after, layer, revision=revision, reader=slot)
    return layer


@transaction.atomic
def submit_reading(*, layer_id: int, user, expected_version: int | None = None) -> MaskLayer:
    """A reader submits their layer of an image read blind. The first of the two is
    ``submit_reading`` (the image stays in double reading), the second ``finish_reading`` (the image
    goes to adjudication): decided under the image lock, so two submits at once cannot both be first
    or both be second."""
    image = _lock_for_layer(layer_id)
    layer = MaskLayer.objects.select_for_update(of=("self",), no_key=True).select_related("author").get(pk=layer_id)
    layer.image = image
    if not permissions.may_edit_layer(user, layer):
        raise NotAllowed(f"only the reader who drew it submits this layer of {image.name}")
    readings = _readings(image)
    other = readings.get(2 if layer.reader == 1 else 1)
    action = "finish_reading" if other is not None and other.status == LayerStatus.SUBMITTED else "submit_reading"
    before = image.status
    after = _check(action, image, user)
    _submit_draft(image, layer, after, expected_version)
    _audit(user, image, action, before, after, layer, revision=layer.revision, reader=layer.reader)
    return layer


def _submitted_readings(image: Image) -> list[MaskLayer]:
    """Both readers' submitted layers (reader 1 first), locked; what an adjudication decides on."""
    readings = _readings(image)
    layers = [readings.get(1), readings.get(2)]
    if any(layer is None or layer.status != LayerStatus.SUBMITTED for layer in layers):
        raise InvalidTransition(f"{image.name} has not both readings submitted", status=image.status)
    for layer in layers:
        layer.image = image
    return layers


def _pick(layers: Sequence[MaskLayer], layer_id: int, image: Image) -> MaskLayer:
    for layer in layers:
        if layer.pk == layer_id:
            return layer
    raise InvalidContent(f"layer {layer_id} is not one of the two readings of {image.name}", rule="not_a_reading")


def _adjudication_reviews(image: Image, layers: Sequence[MaskLayer], user, decision: str, comment: str) -> list[Review]:
    """One review per reader's layer decided on; the other reader is denormalised beside the
    layer's author, so the database refuses an adjudicator who is either reader. An adjudication's
    reviews get their Dice from the agreement stored with the consensus (record_adjudication)."""
    # The readers are fixed while an image is read blind (assign changes them only on new images).
    readers = {1: image.annotator_id, 2: image.second_annotator_id}
    reviews = []
    for layer in layers:
        reviews.append(
            Review.objects.create(
                image=image,
                layer=layer,
                reviewer=user,
                annotator=layer.author,
                other_reader_id=readers[2 if layer.reader == 1 else 1],
                decision=decision,
                comment=(comment or "")[:4000],
            )
        )
    return reviews


@transaction.atomic
def adjudicate(*, image_id: int, user, layer_id: int, comment: str = "") -> list[Review]:
    """The adjudicator approves one reader's layer unchanged as the consensus."""
    image = _lock(image_id)
    before = image.status
    _check("adjudicate", image, user)
    layers = _submitted_readings(image)
    chosen = _pick(layers, layer_id, image)
    reviews = _adjudication_reviews(image, layers, user, Review.Decision.ADJUDICATED, comment)
    for layer in layers:
        if layer is not chosen:
            layer.status = LayerStatus.SUPERSEDED
            layer.save(update_fields=["status", "updated_at"])
    _approve_with(image, chosen)
    agreement_records.record_adjudication(reviews, chosen)
    _audit(user, image, "adjudicate", before, image.status, chosen, reviews=[r.pk for r in reviews])
    return reviews


START_FROM = ("union", "intersection")  # besides one reader's layer (its id)


@transaction.atomic
def adjudicate_edit(
    *, image_id: int, user, content: LayerContent, start_from: int | str, comment: str = ""
) -> list[Review]:
    """The adjudicator's own drawing, started from one reader's layer (its id) or from their
    ``union`` or ``intersection`` (``annotator.adjudication``) and edited, becomes a new layer
    authored by the adjudicator and the consensus; both readings are superseded."""
    image = _lock(image_id)
    before = image.status
    _check("adjudicate_edit", image, user)
    layers = _submitted_readings(image)
    based_on = None if isinstance(start_from, str) else _pick(layers, start_from, image)
    if isinstance(start_from, str) and start_from not in START_FROM:
        raise InvalidContent(f"start from a reader's layer, {' or '.join(START_FROM)}", rule="start_from")
    if not content.is_normal and not content.lesions:
        raise InvalidContent("draw at least one lesion or mark the image normal", rule="empty_submission")
    _check_descriptors(content.lesions, content.assessment)
    reviews = _adjudication_reviews(image, layers, user, Review.Decision.ADJUDICATED, comment)
    for layer in layers:
        layer.status = LayerStatus.SUPERSEDED
        layer.save(update_fields=["status", "updated_at"])
    edited = _reviewer_edit(image, user, content, based_on=based_on)
    _approve_with(image, edited)
    agreement_records.record_adjudication(reviews, edited)
    _audit(
        user,
        image,
        "adjudicate_edit",
        before,
        image.status,
        edited,
        reviews=[r.pk for r in reviews],
        start_from=start_from,
    )
    return reviews


@transaction.atomic
def return_reading(*, image_id: int, user, layer_ids: Sequence[int], comment: str) -> list[Review]:
    """The adjudicator sends one or both readings back with a comment; each reader named reworks
    their own layer (blind still), the other's stays submitted."""
    image = _lock(image_id)
    before = image.status
    after = _check("return_reading", image, user)
    comment = _send_back_comment(comment, "reader")
    layers = _submitted_readings(image)
    if not layer_ids:
        raise InvalidContent("name the reading (or both) to send back", rule="not_a_reading")
    returned = list({layer.pk: layer for layer in (_pick(layers, i, image) for i in layer_ids)}.values())
    reviews = _adjudication_reviews(image, returned, user, Review.Decision.RETURNED, comment)
    for layer in returned:
        layer.status = LayerStatus.RETURNED
        layer.save(update_fields=["status", "updated_at"])
    image.status = after
    image.save(update_fields=["status", "updated_at"])
    _audit(
        user,
        image,
        "return_reading",
        before,
        after,
        returned[0] if len(returned) == 1 else None,
        layers=[layer.pk for layer in returned],
        reviews=[r.pk for r in reviews],
    )
    return reviews


@transaction.atomic
def assign(*, image_ids: Sequence[int], annotator, user, second_annotator=None) -> int:
    """Give images to an annotator (or take them back with annotator=None), or, with
    ``second_annotator``, to two readers for blind double reading.

    An open draft of the previous annotator is handed over as a new revision, so nothing drawn is lost.
    Double reading is set (or undone) only on images still ``new``: once a reader has started, the
    readers stay (a 409 names the first image that is not new, and nothing is assigned).
    """
    if not permissions.can(user, permissions.ASSIGN):
        raise NotAllowed("only a curator assigns images")
    for reader in (annotator, second_annotator):
        if reader is not None and not permissions.may_be_assigned(reader):
            raise InvalidContent(f"{reader.get_username()} is not an annotator")
    if second_annotator is not None and (annotator is None or annotator.pk == second_annotator.pk):
        raise InvalidContent("blind double reading needs two different annotators", rule="two_readers")
    second_id = second_annotator.pk if second_annotator is not None else None
    changed = 0
    for image in Image.objects.select_for_update(no_key=True).filter(pk__in=image_ids).order_by("pk"):
        if image.annotator_id == (annotator.pk if annotator else None) and image.second_annotator_id == second_id:
            continue
        if (second_id is not None or image.second_annotator_id is not None) and image.status != Status.NEW:
            raise InvalidTransition(
                f"{image.name} is {image.status}: only new images are assigned to or taken from double reading",
                status=image.status,
            )
        previous = image.annotator_id
        draft = _open_layer(image)
        if draft is not None and draft.status == LayerStatus.DRAFT and annotator is not None:
            draft.status = LayerStatus.SUPERSEDED
            draft.save(update_fields=["status", "updated_at"])
            _copy_layer(
                draft,
                author=annotator,
                revision=_next_revision(image),
                origin=MaskLayer.Source.DRAWN,
                status=LayerStatus.DRAFT,
            )
        image.annotator = annotator
        image.second_annotator_id = second_id
        image.save(update_fields=["annotator", "second_annotator", "updated_at"])
        _audit(
            user,
            image,
            "assign",
            image.status,
            image.status,
            draft,
            previous=previous,
            annotator=annotator.pk if annotator else None,
            **({"second_annotator": second_id} if second_id is not None else {}),
        )
        changed += 1
    return changed


@transaction.atomic
def create_imported(
    *, image: Image, content: LayerContent | None, as_status: str, author, annotator, actor
) -> MaskLayer | None:
    """Enter a freshly imported image into the workflow at ``as_status`` (draft, submitted, approved).

    ``image`` is saved but not yet in any state but new. Without a mask the image stays new
    (nothing to review) unless a normal label came from INFO.csv.
    """
    if as_status not in (Status.DRAFT, Status.SUBMITTED, Status.APPROVED):
        raise InvalidContent(f"cannot import as {as_status}")
    image.annotator = annotator
    layer = None
    if content is not None:
        owner = annotator if as_status == Status.DRAFT else author
        if owner is None:
            raise InvalidContent("importing as draft needs an annotator to own the draft")
        layer = MaskLayer.objects.create(
            image=image,
            author=owner,
            revision=1,
            source=MaskLayer.Source.IMPORTED,
            status=LayerStatus.DRAFT,
        )
        layer.image = image
        _apply_content(layer, content)
        if as_status == Status.APPROVED:
            layer.save()
            _approve_with(image, layer)
        else:
            if as_status == Status.SUBMITTED:
                layer.status = LayerStatus.SUBMITTED
                layer.submitted_at = _now()
            layer.save()
            image.status = as_status
            image.save()
    else:
        image.save()
    _audit(actor, image, "import", Status.NEW, image.status, layer, checksum=image.checksum)
    return layer


def import_for_redaction(*, image: Image, actor) -> None:
    """Save a freshly imported DICOM image in the ``redaction`` status (no reader sees it there)."""
    image.status = Status.REDACTION
    image.save()
    _audit(actor, image, "import", "", image.status, checksum=image.checksum)


@transaction.atomic
def confirm_redaction(
    *, image_id: int, user, boxes: Sequence[redaction.Box], apply_to_group: bool = False
) -> list[Image]:
    """A curator confirms the black boxes (validated) of an image in ``redaction`` (and, with
    ``apply_to_group``, of every image in ``redaction`` of the same scanner group): the stored PNG is
    replaced by one with the boxes painted black (the old pixels are kept nowhere), the detected
    boxes are cleared and each image moves to ``new``. Returns the images released, the requested
    one first.
    """
    image = _lock(image_id)
    _check("confirm_redaction", image, user)
    if image.text_boxes is None:
        raise InvalidTransition(
            f"the search for burned-in text in {image.name} has not run yet; try again in a moment",
            status=image.status,
        )
    released = [image]
    if apply_to_group:
        group = _group_key(image)
        others = (
            Image.objects.select_for_update(no_key=True)
            .filter(status=Status.REDACTION, width=image.width, height=image.height, text_boxes__isnull=False)
            .exclude(pk=image.pk)
            .order_by("pk")
        )
        released += [other for other in others if _group_key(other) == group]
    for target in released:
        before = target.status
        after = _check("confirm_redaction", target, user)
        data = ImageData.objects.select_for_update(no_key=True).get(image=target)
        data.png = redaction.black_out_png(bytes(data.png), boxes)
        data.save(update_fields=["png"])
        detected = len(target.text_boxes or [])
        target.checksum = hashlib.sha256(data.png).hexdigest()
        target.text_boxes = []
        target.status = after
        target.save(update_fields=["checksum", "text_boxes", "status", "updated_at"])
        _audit(
            user,
            target,
            "confirm_redaction",
            before,
            after,
            boxes=[[b.x, b.y, b.w, b.h] for b in boxes],
            detected=detected,
            group=target.pk != image.pk,
        )
    return released


def _group_key(image: Image) -> str:
    model = (image.acquisition or {}).get("manufacturer_model") or ""
    return redaction.scanner_group_key(model, image.width, image.height)
