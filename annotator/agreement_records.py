"""Stored reader agreement: compute ``annotator.agreement`` for a reviewed pair of layers and keep
it as an ``Agreement`` row (written by the workflow on approval, rewritten by
``manage.py recompute_agreement`` after a metric change)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Subquery
from django.db.models.functions import Coalesce

from annotator import agreement
from annotator.models import Agreement, Image, MaskLayer, Review

DECIDED = (Review.Decision.APPROVED, Review.Decision.EDITED_APPROVED, Review.Decision.ADJUDICATED)


def spacing_of(image: Image) -> agreement.Spacing | None:
    """The pixel size in mm: X and Y when both are known, else the single figure (isotropic), else none."""
    if image.pixel_spacing_x_mm and image.pixel_spacing_y_mm:
        return agreement.Spacing(image.pixel_spacing_x_mm, image.pixel_spacing_y_mm)
    if image.pixel_spacing_mm:
        return agreement.Spacing(image.pixel_spacing_mm, image.pixel_spacing_mm)
    return None


def round_of(review: Review) -> int:
    """1 + the send-backs of this image between its last reopening (if any) and ``review``: one query."""
    earlier = Review.objects.filter(image_id=review.image_id, pk__lt=review.pk)
    last_reopening = (
        earlier.filter(decision=Review.Decision.REOPENED).order_by().values("image_id").annotate(last=Max("pk"))
    )
    counted = earlier.filter(
        decision=Review.Decision.RETURNED, pk__gt=Coalesce(Subquery(last_reopening.values("last")), 0)
    )
    return 1 + counted.count()


def consensus_of(review: Review) -> MaskLayer | None:
    """The layer ``review`` approved: the reviewed layer itself, or the reviewer's edit of it; for
    an adjudication, the consensus its stored pair names (else the image's current consensus)."""
    if review.decision == Review.Decision.APPROVED:
        return review.layer
    if review.decision == Review.Decision.ADJUDICATED:
        stored = review.agreements.filter(kind=Agreement.Kind.SUBMISSION_CONSENSUS).select_related("second_layer")
        row = stored.first()
        return row.second_layer if row is not None else review.image.consensus
    if review.decision == Review.Decision.EDITED_APPROVED:
        return (
            MaskLayer.objects.filter(based_on=review.layer, source=MaskLayer.Source.REVIEWER_EDIT)
            .order_by("revision")
            .first()
        )
    return None


def compute(image: Image, first: MaskLayer, second: MaskLayer) -> agreement.ImageAgreement:
    a = first.geometry_lesions()
    # An unchanged approval compares the layer with itself: its lesions are read once.
    b = a if second.pk == first.pk else second.geometry_lesions()
    return agreement.compare_layers(a, b, image.width, image.height, spacing_of(image))


def fields_of(result: agreement.ImageAgreement, spacing: agreement.Spacing | None) -> dict:
    lesions = result.lesions
    return {
        "unit": result.unit,
        "spacing_x_mm": spacing.x_mm if spacing else None,
        "spacing_y_mm": spacing.y_mm if spacing else None,
        "dice": result.whole.dice,
        "iou": result.whole.iou,
        "hausdorff": result.whole.hausdorff,
        "hd95": result.whole.hd95,
        "assd": result.whole.assd,
        "per_label": {label: o.as_dict() for label, o in result.per_label.items()},
        "first_label": result.first_image_label,
        "second_label": result.second_image_label,
        "normal_lesion_disagreement": result.normal_lesion_disagreement,
        "lesions_matched": len(lesions.matches),
        "lesions_added": len(lesions.added),
        "lesions_missed": len(lesions.missed),
        "label_flips": lesions.label_flips,
        "matches": [m.as_dict() for m in lesions.matches],
        "missed": list(lesions.missed),
        "added": list(lesions.added),
        "confusion": {a: dict(row) for a, row in lesions.confusion.items()},
        "min_iou": lesions.min_iou,
    }


def record(review: Review, consensus: MaskLayer, *, replace: bool = False) -> Agreement:
    """Store the agreement of ``review``'s layer and the layer it approved; ``replace`` rewrites the
    row if there is one (the recomputation), else the row is new (the approval that made the review).

    The review's own ``dice`` (the dashboard's figure) is the row's whole-mask Dice to 4 decimals,
    set here rather than computed a second time by the workflow."""
    row = _store(
        review,
        Agreement.Kind.SUBMISSION_CONSENSUS,
        review.layer,
        consensus,
        first_reader_id=review.annotator_id,
        second_reader_id=review.reviewer_id,
        replace=replace,
    )
    dice = round(row.dice, 4)
    if review.dice != dice:
        review.dice = dice
        Review.objects.filter(pk=review.pk).update(dice=dice)
    return row


def record_adjudication(reviews: list[Review], consensus: MaskLayer) -> list[Agreement]:
    """The adjudicator's decision on a blind double reading: each reading against the consensus
    (one row per reading's review), and the two readings against each other (the inter-reader
    pair, kept on reader 1's review)."""
    rows = [record(review, consensus) for review in reviews]
    by_reader = {review.layer.reader: review for review in reviews}
    if 1 in by_reader and 2 in by_reader:
        first, second = by_reader[1].layer, by_reader[2].layer
        rows.append(
            _store(
                by_reader[1],
                Agreement.Kind.READERS,
                first,
                second,
                first_reader_id=first.author_id,
                second_reader_id=second.author_id,
            )
        )
    return rows


def _store(
    review: Review,
    kind: str,
    first: MaskLayer,
    second: MaskLayer,
    *,
    first_reader_id: int,
    second_reader_id: int,
    replace: bool = False,
) -> Agreement:
    image = review.image
    result = compute(image, first, second)
    values = {
        "image": image,
        "first_layer": first,
        "second_layer": second,
        "first_reader_id": first_reader_id,
        "second_reader_id": second_reader_id,
        "round": round_of(review),
        "decided_at": review.created_at,
        **fields_of(result, spacing_of(image)),
    }
    if not replace:
        return Agreement.objects.create(review=review, kind=kind, **values)
    row, _ = Agreement.objects.update_or_create(review=review, kind=kind, defaults=values)
    return row


def recompute_all(progress=None) -> int:
    """Rewrite the agreement of every approval on record (and add those missing; a blind reading's
    readers pair is rewritten, made when the adjudicator decides); returns the count of reviews."""
    reviews = (
        Review.objects.filter(decision__in=DECIDED)
        .select_related("image", "layer")
        .prefetch_related("layer__lesions")
        .order_by("pk")
    )
    done = 0
    for review in reviews.iterator(chunk_size=200):
        consensus = consensus_of(review)
        if consensus is None:
            continue
        with transaction.atomic():
            record(review, consensus, replace=True)
            for readers in review.agreements.filter(kind=Agreement.Kind.READERS).select_related(
                "first_layer", "second_layer"
            ):
                _store(
                    review,
                    Agreement.Kind.READERS,
                    readers.first_layer,
                    readers.second_layer,
                    first_reader_id=readers.first_reader_id,
                    second_reader_id=readers.second_reader_id,
                    replace=True,
                )
        done += 1
        if progress:
            progress(done)
    return done
