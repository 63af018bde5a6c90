"""Reads: worklists, queues, counts and the context of one image. Lists go through permissions."""

from __future__ import annotations

from django.db.models import Avg, Case, Count, IntegerField, Min, Q, Value, When

from annotator import permissions, workflow
from annotator.models import Image, LayerStatus, MaskLayer, Patient, Review, Status

ANNOTATOR_OPEN = (Status.RETURNED, Status.DRAFT, Status.NEW)


def worklist(user):
    """The annotator's images still to do: returned first, then drafts, then new, by name."""
    order = Case(
        When(status=Status.RETURNED, then=Value(0)),
        When(status=Status.DRAFT, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        Image.objects.filter(status__in=ANNOTATOR_OPEN)
        .restrict(user, permissions.ANNOTATE)
        .select_related("patient")
        .annotate(priority=order)
        .order_by("priority", "name")
    )


def my_done(user):
    return (
        Image.objects.filter(status__in=[Status.SUBMITTED, Status.APPROVED])
        .restrict(user, permissions.ANNOTATE)
        .select_related("patient")
        .order_by("-updated_at")
    )


def review_queue(user):
    """Submitted images the user may review (never their own), oldest submission first."""
    return (
        Image.objects.filter(status=Status.SUBMITTED)
        .restrict(user, permissions.REVIEW)
        .select_related("patient", "annotator")
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
    """What the annotation and review pages need about one image, decided here, not in JS."""
    open_layer = (
        MaskLayer.objects.filter(image=image, status__in=[LayerStatus.DRAFT, LayerStatus.SUBMITTED])
        .select_related("author")
        .prefetch_related("lesions")
        .first()
    )
    previous = MaskLayer.objects.filter(image=image).select_related("author").prefetch_related("lesions")
    if open_layer is not None:
        previous = previous.filter(revision__lt=open_layer.revision)
    previous_layer = previous.order_by("-revision").first()
    can_annotate = permissions.can(user, permissions.ANNOTATE, image)
    reviewable = image.status in workflow.TRANSITIONS["approve"][0]
    can_review = reviewable and permissions.can(user, permissions.REVIEW, image)
    if can_review:
        next_id = next_for_review(user, after=image.pk)
    elif can_annotate:
        next_id = next_to_annotate(user, after=image.pk)
    else:
        next_id = None
    return {
        "open_layer": open_layer,
        "previous_layer": previous_layer,
        "can_annotate": can_annotate,
        "can_review": can_review,
        "next_id": next_id,
    }


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
