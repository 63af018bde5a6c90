"""Reads: worklists, queues, counts and the context of one image. Lists go through permissions."""

from __future__ import annotations

from django.db.models import Avg, Case, Count, F, IntegerField, Min, Q, Value, When

from annotator import agreement as agreement_metrics
from annotator import permissions, workflow
from annotator.models import Agreement, Image, LayerStatus, MaskLayer, Patient, Review, Status

ANNOTATOR_OPEN = (Status.RETURNED, Status.DRAFT, Status.NEW)
# Blind double reading: an image is on a reader's worklist while their own reading is not submitted.
READER_OPEN = (*ANNOTATOR_OPEN, Status.DOUBLE_READING)


def _submitted_by(user):
    return MaskLayer.objects.filter(author=user, status=LayerStatus.SUBMITTED).values("image_id")


def worklist(user):
    """The annotator's images still to do: returned first, then drafts (and double readings not yet
    submitted by this reader), then new, by name."""
    order = Case(
        When(status=Status.RETURNED, then=Value(0)),
        When(status__in=[Status.DRAFT, Status.DOUBLE_READING], then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        Image.objects.filter(status__in=READER_OPEN)
        .exclude(Q(status=Status.DOUBLE_READING) & Q(pk__in=_submitted_by(user)))
        .restrict(user, permissions.ANNOTATE)
        .select_related("patient")
        .annotate(priority=order)
        .order_by("priority", "name")
    )


def my_done(user):
    submitted_reading = Q(status=Status.DOUBLE_READING) & Q(pk__in=_submitted_by(user))
    return (
        Image.objects.filter(Q(status__in=[Status.SUBMITTED, Status.APPROVED, Status.ADJUDICATION]) | submitted_reading)
        .restrict(user, permissions.ANNOTATE)
        .select_related("patient")
        .order_by("-updated_at")
    )


def review_queue(user):
    """Submitted images (and double readings waiting for adjudication) the user may review (never
    their own, never one they read), oldest first."""
    return (
        Image.objects.filter(status__in=[Status.SUBMITTED, Status.ADJUDICATION])
        .restrict(user, permissions.REVIEW)
        .select_related("patient", "annotator", "second_annotator")
        .order_by("updated_at", "pk")
    )


def next_for_review(user, *, after: int | None = None) -> int | None:
    qs = review_queue(user)
    if after is not None:
        qs = qs.exclude(pk=after)
    return qs.values_list("pk", flat=True).first()


def position_in(queryset, image_id: int) -> tuple[int, int] | None:
    """(n, total): the image is the n-th (1-based) of the list's ``total``; None when not in it.

    One query for the ids (a worklist of a few hundred images is a few kilobytes).
    """
    ids = list(queryset.values_list("pk", flat=True))
    return (ids.index(image_id) + 1, len(ids)) if image_id in ids else None


def next_to_annotate(user, *, after: int | None = None) -> int | None:
    qs = worklist(user)
    if after is not None:
        qs = qs.exclude(pk=after)
    return qs.values_list("pk", flat=True).first()


def status_counts() -> dict:
    """Counts by status overall and per patient, in two queries whatever the dataset size."""
    overall = {s.value: 0 for s in Status}
    for row in Image.objects.values("status").annotate(n=Count("pk")):
        overall[row["status"]] = row["n"]
    per_patient = []
    aggregates = {s.value: Count("images", filter=Q(images__status=s.value)) for s in Status}
    for patient in Patient.objects.annotate(total=Count("images"), **aggregates).order_by("code"):
        per_patient.append(
            {"patient": patient.code, "total": patient.total, **{s.value: getattr(patient, s.value) for s in Status}}
        )
    return {"overall": overall, "total": sum(overall.values()), "patients": per_patient}


def image_context(image: Image, user) -> dict:
    """What the annotation and review pages need about one image, decided here, not in JS.

    Read blind by two readers, a reader's ``open_layer`` and ``previous_layer`` are their own and
    ``readings`` holds only their own; others get both readers' open layers in ``readings`` (and
    their per-lesion agreement once both are submitted) and no ``open_layer``.
    """
    # Every layer read here passes the blind rule (annotator.permissions), nothing else decides it.
    visible = MaskLayer.objects.filter(image=image).exclude(permissions.blind_layers(user))
    layers = visible.select_related("author").prefetch_related("lesions")
    open_layers = list(layers.filter(status__in=[LayerStatus.DRAFT, LayerStatus.SUBMITTED]).order_by("reader"))
    readings: list[MaskLayer] = []
    if image.is_double_read:
        readings = open_layers
        own = [layer for layer in open_layers if layer.author_id == user.pk]
        open_layer = own[0] if own else None
        previous = layers.filter(author=user) if permissions.is_reader(user, image) else layers.none()
    else:
        open_layer = open_layers[0] if open_layers else None
        previous = layers
    if open_layer is not None:
        previous = previous.filter(revision__lt=open_layer.revision)
    previous_layer = previous.order_by("-revision").first()
    can_annotate = permissions.can(user, permissions.ANNOTATE, image)
    reviewable = image.status in workflow.TRANSITIONS["approve"][0]
    can_review = reviewable and permissions.can(user, permissions.REVIEW, image)
    can_adjudicate = image.status in workflow.TRANSITIONS["adjudicate"][0] and permissions.can(
        user, permissions.REVIEW, image
    )
    both_in = len(readings) == 2 and all(layer.status == LayerStatus.SUBMITTED for layer in readings)
    if can_review or can_adjudicate:
        next_id = next_for_review(user, after=image.pk)
    elif can_annotate:
        next_id = next_to_annotate(user, after=image.pk)
    else:
        next_id = None
    return {
        "open_layer": open_layer,
        "previous_layer": previous_layer,
        "readings": readings,
        "reading_agreement": reading_agreement(image, readings) if both_in else None,
        "reviews": permissions.restrict_reviews(image.reviews.all(), user)
        .prefetch_related("remarks")
        .select_related("reviewer"),
        "can_annotate": can_annotate,
        "can_review": can_review,
        "can_adjudicate": can_adjudicate,
        "next_id": next_id,
    }


def submitted_readings(image: Image) -> list[MaskLayer] | None:
    """Both readers' submitted layers of an image in adjudication (reader 1 first), or None."""
    if image.status != Status.ADJUDICATION:
        return None
    layers = list(
        MaskLayer.objects.filter(image=image, status=LayerStatus.SUBMITTED, reader__in=[1, 2])
        .prefetch_related("lesions")
        .order_by("reader")
    )
    return layers if len(layers) == 2 else None


def image_spacing(image: Image) -> agreement_metrics.Spacing | None:
    x = image.pixel_spacing_x_mm or image.pixel_spacing_mm
    y = image.pixel_spacing_y_mm or image.pixel_spacing_mm
    return agreement_metrics.Spacing(x_mm=x, y_mm=y) if x and y else None


def reading_agreement(image: Image, readings) -> dict:
    """The two readers' agreement (annotator.agreement: whole mask, per label, per lesion), reader 1 first."""
    first, second = readings
    return agreement_metrics.compare_layers(
        first.geometry_lesions(), second.geometry_lesions(), image.width, image.height, image_spacing(image)
    ).as_dict()


def filter_images(queryset, filters: dict):
    """Apply validated ImageFilterInput data."""
    if filters.get("status"):
        queryset = queryset.filter(status__in=filters["status"])
    if filters.get("patient"):
        queryset = queryset.filter(patient__code__in=filters["patient"])
    if filters.get("search"):
        queryset = queryset.filter(name__icontains=filters["search"])
    return queryset


def agreement() -> dict:
    """How often the second reader agreed with the first, and how much an edit changed (Dice)."""
    decided = Review.objects.filter(decision__in=[Review.Decision.APPROVED, Review.Decision.EDITED_APPROVED])
    edited = decided.filter(decision=Review.Decision.EDITED_APPROVED).aggregate(
        n=Count("pk"), mean=Avg("dice"), lowest=Min("dice")
    )
    return {
        "approved_unchanged": decided.filter(decision=Review.Decision.APPROVED).count(),
        "edited": edited["n"],
        "edited_mean_dice": round(edited["mean"], 3) if edited["mean"] is not None else None,
        "edited_lowest_dice": edited["lowest"],
        "sent_back": Review.objects.filter(decision=Review.Decision.RETURNED).count(),
    }


AGREEMENT_FIELDS = (
    "image_id",
    "kind",
    "round",
    "decided_at",
    "unit",
    "dice",
    "iou",
    "hd95",
    "assd",
    "lesions_matched",
    "lesions_added",
    "lesions_missed",
    "label_flips",
    "confusion",
)


def agreement_rows(user, filters: dict) -> list[dict]:
    """The stored agreement rows ``user`` may see (annotator.permissions.agreement_rule), filtered by
    validated AgreementFilterInput data, as dicts with reader names and patient code: one query."""
    rows = permissions.restrict_agreements(Agreement.objects.all(), user)
    if filters.get("patient"):
        rows = rows.filter(image__patient__code__in=filters["patient"])
    if filters.get("date_from"):
        rows = rows.filter(decided_at__date__gte=filters["date_from"])
    if filters.get("date_to"):
        rows = rows.filter(decided_at__date__lte=filters["date_to"])
    return list(
        rows.order_by("decided_at", "pk").values(
            *AGREEMENT_FIELDS,
            annotator_name=F("first_reader__username"),
            reviewer_name=F("second_reader__username"),
            patient=F("image__patient__code"),
        )
    )


def agreement_patients(user) -> list[str]:
    """Patient codes with agreement rows ``user`` may see (the page's patient filter): one query."""
    rows = permissions.restrict_agreements(Agreement.objects.all(), user)
    return list(rows.order_by("image__patient__code").values_list("image__patient__code", flat=True).distinct())


def latest_agreement(image: Image, user):
    """The latest stored agreement of ``image`` that ``user`` may see, or None (the review page)."""
    rows = permissions.restrict_agreements(Agreement.objects.filter(image=image), user)
    return rows.select_related("first_layer", "second_layer").order_by("-decided_at", "-pk").first()
