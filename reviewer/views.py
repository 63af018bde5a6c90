"""Reviewer pages: the queue of others' submissions and the review page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from annotator import dataset_settings, permissions, selectors
from annotator.models import Image


@permissions.require(permissions.REVIEW)
def queue(request):
    page = Paginator(selectors.review_queue(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "reviewer/queue.html", {"page": page})


def review(request, image_id: int):
    image = get_object_or_404(Image.objects.restrict(request.user), pk=image_id)
    return render(
        request,
        "reviewer/review.html",
        {
            "image": image,
            "can_review": permissions.can(request.user, permissions.REVIEW, image),
            "agreement": selectors.latest_agreement(image, request.user),
            "review_page": True,  # the toolbar adds the remark pin
            "toolbar_label": "Viewer tools",
            **dataset_settings.page_context(),
            "progress": selectors.position_in(selectors.review_queue(request.user), image.pk),
            "progress_list": "the review queue",
        },
    )
