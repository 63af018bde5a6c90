"""The burned-in text search of DICOM imports, off the import's path.

Tesseract costs ~0.3 s an image, ten times everything else an import does, so by default the
import only stores the image (in ``redaction``, which no reader sees) with ``text_boxes`` empty
(None: "not searched yet") and queues the search on the RQ workers that also run exports. A
curator cannot confirm an image before its search has run (the workflow refuses, 409). With
``settings.TEXT_SEARCH_INLINE`` (or when the queue cannot be reached) the search runs at once, in
the importing process.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import numpy as np
import PIL.Image
from django.conf import settings

from annotator import redaction
from annotator.models import Image, ImageData, Status

logger = logging.getLogger(__name__)


UNAVAILABLE = -1  # what ``search`` returns when tesseract is not there


def search(image_id: int) -> int | None:
    """Search one waiting image and store its boxes: the number found, ``UNAVAILABLE`` without
    tesseract (no boxes stored: the curator checks by eye), None if there is nothing to search."""
    if not Image.objects.filter(pk=image_id, status=Status.REDACTION, text_boxes__isnull=True).exists():
        return None
    png = ImageData.objects.filter(image_id=image_id).values_list("png", flat=True).first()
    if png is None:
        return None
    rgb = np.asarray(PIL.Image.open(io.BytesIO(bytes(png))).convert("RGB"))
    found: int
    try:
        boxes = [box.as_dict() for box in redaction.find_text(rgb)]
        found = len(boxes)
    except redaction.TextDetectionUnavailable:
        # Never "no text" by silence: the image still waits for the curator, who checks it by eye.
        logger.warning("text detection unavailable for image %s: no boxes proposed", image_id)
        boxes, found = [], UNAVAILABLE
    Image.objects.filter(pk=image_id, status=Status.REDACTION, text_boxes__isnull=True).update(text_boxes=boxes)
    return found


def search_all(image_ids: Sequence[int]) -> dict[int, int | None]:
    """The RQ job: search every image of one import; what ``search`` said of each."""
    return {image_id: search(image_id) for image_id in image_ids}


def queue(image_ids: Sequence[int]) -> dict[int, int | None] | None:
    """Queue the search of ``image_ids``: None when queued, else what ``search_all`` found here."""
    ids = list(image_ids)
    if not ids:
        return {}
    if not settings.TEXT_SEARCH_INLINE:
        try:
            import django_rq

            # At once, not at the end of an open transaction: the images are committed already.
            django_rq.get_queue("default", commit_mode="auto").enqueue(search_all, ids, job_timeout=3600)
            return None
        except Exception as e:  # noqa: BLE001 - no queue (Redis down): search here rather than never
            logger.warning("text search queue unavailable (%s): searching during the import", type(e).__name__)
    return search_all(ids)
