"""Annotator pages: the worklist, the annotation page and the reader-agreement page. Validate, check, call, render."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render

from annotator import agreement_report, dataset_settings, permissions, selectors
from annotator.models import Image
from annotator.serializers import AgreementFilterInput


@permissions.require(permissions.ANNOTATE)
def worklist(request):
    todo = Paginator(selectors.worklist(request.user), 50).get_page(request.GET.get("page"))
    done = selectors.my_done(request.user)[:20]
    counts = {s: 0 for s in selectors.ANNOTATOR_OPEN}
    for row in selectors.worklist(request.user).order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return render(request, "annotator/worklist.html", {"todo": todo, "done": done, "counts": counts})


def annotate(request, image_id: int):
    image = get_object_or_404(Image.objects.restrict(request.user), pk=image_id)
    if not permissions.can(request.user, permissions.ANNOTATE, image):
        # Seen but not theirs to draw: the read-only viewer (the review page) shows it.
        return redirect("reviewer:review", image_id=image.pk)
    # "Image 3 of 12": where this image stands in the reader's worklist (returned, drafts, new).
    progress = selectors.position_in(selectors.worklist(request.user), image.pk)
    return render(
        request,
        "annotator/annotate.html",
        {"image": image, "progress": progress, "progress_list": "My images", **dataset_settings.page_context()},
    )


@permissions.require(permissions.AGREEMENT)
def agreement_page(request):
    """Reader agreement: curators see every stored pair, readers the pairs they read (permissions)."""
    filters = AgreementFilterInput(data=request.GET)
    valid = filters.is_valid()
    rows = selectors.agreement_rows(request.user, filters.validated_data) if valid else []
    data = filters.validated_data if valid else {}
    return render(
        request,
        "annotator/agreement.html",
        {
            "report": agreement_report.summarise(rows),
            "errors": None if valid else filters.errors,
            "patients": selectors.agreement_patients(request.user),
            "patient": ",".join(data.get("patient", [])),
            "date_from": data.get("date_from") or "",
            "date_to": data.get("date_to") or "",
            "everyone": permissions.agreement_rule(request.user) == Q(),
        },
        status=200 if valid else 400,
    )
