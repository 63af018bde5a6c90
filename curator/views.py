"""Curator pages: the dataset dashboard, assignment, reopening, import, burned-in text redaction and export."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from annotator import birads, dataset_settings, exporting, importing, permissions, redaction, selectors, workflow
from annotator.models import AuditEvent, DescriptorMode, Image, Status
from annotator.permissions import require
from annotator.serializers import AssignInput, AuditFilterInput, ImageFilterInput, SettingsInput
from curator import api
from curator import audit as audit_text


def _back(request) -> HttpResponseRedirect:
    """Back to the form's ``next`` page if it is a path on this site, else to the dashboard.

    An unchecked ``next`` would let a link elsewhere use this site to send a curator anywhere.
    """
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect("curator:dashboard")


def _annotators():
    group = Group.objects.filter(name=permissions.ANNOTATOR).first()
    return group.user_set.filter(is_active=True).order_by("username") if group else get_user_model().objects.none()


def _open_link(user, image: Image) -> tuple[str, str]:
    """The page that opens ``image`` for ``user`` given its status (permissions.page_for), and its text."""
    page, label = permissions.page_for(user, image)
    if page == "redaction":
        return reverse("curator:redaction"), label
    if page == "annotate":
        return reverse("annotator:annotate", args=[image.pk]), label
    return reverse("reviewer:review", args=[image.pk]), label


@require(permissions.AUDIT)
def dashboard(request):
    images = Image.objects.select_related("patient", "annotator", "second_annotator").order_by("name")
    filters = ImageFilterInput(data=request.GET)
    if filters.is_valid():
        images = selectors.filter_images(images, filters.validated_data)
    else:
        messages.error(request, f"Filter ignored: {filters.errors}")
    status = request.GET.get("status", "") if filters.is_valid() else ""
    patient = request.GET.get("patient", "") if filters.is_valid() else ""
    page = Paginator(images, 50).get_page(request.GET.get("page"))
    for image in page:
        image.open_url, image.open_label = _open_link(request.user, image)
    return render(
        request,
        "curator/dashboard.html",
        {
            "counts": selectors.status_counts(),
            "agreement": selectors.agreement(),
            "page": page,
            "statuses": Status.choices,
            "status": status,
            "patient": patient,
            "annotators": _annotators(),
        },
    )


@require_POST
@require(permissions.ASSIGN)
def assign(request):
    form = AssignInput(data=request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in form.errors.items())
        messages.error(request, f"Nothing assigned ({problems}).")
    else:
        data = form.validated_data
        try:
            n = workflow.assign(
                image_ids=data["image_ids"],
                annotator=data["annotator"],
                second_annotator=data["second_annotator"],
                user=request.user,
            )
            who = data["annotator"].get_username() if data["annotator"] else "nobody"
            if data["second_annotator"]:
                who += f" and {data['second_annotator'].get_username()} (blind double reading)"
            messages.success(request, f"{n} image(s) assigned to {who}.")
        except workflow.WorkflowError as e:
            messages.error(request, e.message)
    return _back(request)


@require_POST
@require(permissions.REOPEN)
def reopen(request, image_id: int):
    image = get_object_or_404(Image, pk=image_id)
    try:
        workflow.reopen(image_id=image.pk, user=request.user, reason=request.POST.get("reason", ""))
        messages.success(request, f"{image.name} reopened.")
    except workflow.WorkflowError as e:
        messages.error(request, e.message)
    return _back(request)


@require(permissions.IMPORT)
def import_page(request):
    report = None
    error = None
    if request.method == "POST":
        try:
            report = api.run_upload_import(request)
        except importing.ImportRefused as e:
            error = str(e)
    return render(request, "curator/import.html", {"report": report, "error": error, "annotators": _annotators()})


# Images on one contact sheet; the rest follow once these are confirmed (a page of PNGs stays light).
SHEET_SIZE = 60


@require(permissions.REDACT)
def redaction_page(request):
    """The images waiting in ``redaction`` as a contact sheet, grouped by scanner model and size, with
    the boxes found on import; the page's script posts the curator's boxes to the redact endpoint."""
    waiting = Image.objects.filter(status=Status.REDACTION)
    images = list(waiting.order_by("pk")[:SHEET_SIZE])
    for image in images:
        image.boxes_json = json.dumps(
            [{k: int(box[k]) for k in ("x", "y", "w", "h")} for box in image.text_boxes or []]
        )
    groups = redaction.group_by_scanner(
        images, lambda im: ((im.acquisition or {}).get("manufacturer_model"), im.width, im.height)
    )
    return render(
        request,
        "curator/redaction.html",
        {"groups": list(groups.items()), "total": waiting.count(), "shown": len(images)},
    )


@require(permissions.EXPORT)
def export_page(request):
    if request.GET.get("download"):
        try:
            return api.export_response(api.export_options(request.GET))
        except ValidationError as e:
            messages.error(request, str(e.detail))
    patients = Image.objects.filter(status=Status.APPROVED).values_list("patient__code", flat=True).distinct()
    return render(
        request,
        "curator/export.html",
        {
            "formats": sorted(exporting.FORMATS),
            "patients": sorted(set(patients)),
            "approved": Image.objects.filter(status=Status.APPROVED).count(),
        },
    )


@require(permissions.AUDIT)
def audit(request):
    events = AuditEvent.objects.select_related("actor", "image").order_by("-created_at", "-id")
    filters = AuditFilterInput(data=request.GET)
    image = ""
    if not filters.is_valid():
        messages.error(request, f"Filter ignored: {filters.errors}")
    elif filters.validated_data.get("image"):
        image = filters.validated_data["image"]
        events = events.filter(image__name=image)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    page.object_list = audit_text.describe(page.object_list)
    query = f"{urlencode({'image': image})}&" if image else ""
    return render(request, "curator/audit.html", {"page": page, "image": image, "query": query})


@require(permissions.CONFIGURE)
def settings_page(request):
    """Dataset settings: whether readers describe lesions with the BI-RADS lexicon (off, on, required)."""
    if request.method == "POST":
        form = SettingsInput(data=request.POST)
        if not form.is_valid():
            messages.error(request, f"Nothing changed: {' '.join(map(str, form.errors.get('descriptors', [])))}")
        else:
            try:
                mode = form.validated_data["descriptors"]
                dataset_settings.set_descriptor_mode(mode=mode, user=request.user)
                messages.success(request, f"BI-RADS descriptors: {DescriptorMode(mode).label}.")
            except dataset_settings.SettingsError as e:
                messages.error(request, e.message)
        return redirect("curator:settings")
    history = AuditEvent.objects.filter(action="settings").select_related("actor")[:20]
    return render(
        request,
        "curator/settings.html",
        {
            "current": dataset_settings.current(),
            "modes": DescriptorMode.choices,
            "lexicon": birads.LEXICON,
            "lexicon_version": birads.LEXICON_VERSION,
            "assessments": birads.ASSESSMENT_LABELS,
            "history": history,
        },
    )
