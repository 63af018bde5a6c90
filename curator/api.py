"""The curator's API: assign, reopen, import, export (streamed or as a background job), stats, audit."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view, parser_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotator import dataset_settings, exporting, importing, permissions, selectors, workflow
from annotator.api import valid
from annotator.models import AuditEvent, Image
from annotator.serializers import (
    AssignInput,
    AuditEventSerializer,
    AuditFilterInput,
    ExportInput,
    ImportInput,
    RedactInput,
    ReopenInput,
    ReviewSerializer,
    SettingsInput,
)
from busreview.api import ErrorSerializer
from curator import jobs
from curator.models import ExportJob

JOB_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)


def gate(action_name: str):
    return permission_classes([permissions.Gate.for_action(action_name)])


class ReopenViewSet(viewsets.GenericViewSet):
    """``POST /api/images/{id}/reopen/``: a curator sends an approved image back, with a reason."""

    permission_classes = [permissions.Gate]
    required_action = permissions.REOPEN

    def get_queryset(self):
        return Image.objects.restrict(self.request.user, permissions.VIEW)

    @extend_schema(request=ReopenInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        image = self.get_object()
        data = valid(ReopenInput, request)
        review = workflow.reopen(image_id=image.pk, user=request.user, reason=data["reason"])
        return Response(ReviewSerializer(review).data)


class RedactViewSet(viewsets.GenericViewSet):
    """``POST /api/images/{id}/redact/``: a curator blacks out burned-in text and releases the image
    (and, with ``apply_to_group``, every image in redaction of the same scanner model and size)."""

    permission_classes = [permissions.Gate]
    required_action = permissions.REDACT

    def get_queryset(self):
        return Image.objects.restrict(self.request.user, permissions.VIEW)

    @extend_schema(
        request=RedactInput,
        responses=inline_serializer("Redacted", {"released": serializers.ListField(child=serializers.CharField())}),
    )
    @action(detail=True, methods=["post"])
    def redact(self, request, pk=None):
        image = self.get_object()
        data = valid(RedactInput, request, image=image)
        released = workflow.confirm_redaction(
            image_id=image.pk,
            user=request.user,
            boxes=data["boxes"],
            apply_to_group=data["apply_to_group"],
        )
        return Response({"released": [im.name for im in released]})


class AuditViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEventSerializer
    permission_classes = [permissions.Gate]
    required_action = permissions.AUDIT

    def get_queryset(self):
        qs = AuditEvent.objects.select_related("actor", "image")
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return qs.none()
        filters = AuditFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        if filters.validated_data.get("image"):
            qs = qs.filter(image__name=filters.validated_data["image"])
        return qs


@extend_schema(request=AssignInput, responses=inline_serializer("Assigned", {"assigned": serializers.IntegerField()}))
@api_view(["POST"])
@gate(permissions.ASSIGN)
def assign(request):
    data = valid(AssignInput, request)
    count = workflow.assign(
        image_ids=data["image_ids"],
        annotator=data["annotator"],
        second_annotator=data["second_annotator"],
        user=request.user,
    )
    return Response({"assigned": count})


@extend_schema(
    request={
        "multipart/form-data": inline_serializer(
            "ImportUpload",
            {
                "archive": serializers.FileField(required=False),
                "images": serializers.ListField(child=serializers.FileField(), required=False),
                "masks": serializers.ListField(child=serializers.FileField(), required=False),
                "info_csv": serializers.FileField(required=False),
                "as_status": serializers.ChoiceField(choices=["draft", "submitted", "approved"], required=False),
                "annotator": serializers.CharField(required=False),
                "frames": serializers.CharField(required=False, help_text="DICOM: key (default), all, or 1,5,9"),
                "allow_modalities": serializers.CharField(required=False, help_text="DICOM: e.g. MG,CR"),
                "dataset": serializers.ChoiceField(
                    choices=importing.DATASET_CHOICES,
                    required=False,
                    help_text="the source's layout; auto recognises BUSI, BrEaST and BUS-BRA by their files",
                ),
            },
        )
    },
    responses=OpenApiTypes.OBJECT,
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
@gate(permissions.IMPORT)
def import_files(request):
    report = run_upload_import(request)
    # Nothing usable at all is a client error; a partial import is a success with a defect list.
    nothing = report.failed and not report.imported and not report.unchanged
    return Response(report.as_dict(), status=status.HTTP_400_BAD_REQUEST if nothing else status.HTTP_200_OK)


def run_upload_import(request) -> importing.ImportReport:
    """Shared by the API and the curator's import page (a DRF or a plain Django request)."""
    content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    # Refuse an oversized upload before the body is read (parsing it would spool it to disk).
    importing.check_upload_size(content_length)
    form = ImportInput(data=request.data if hasattr(request, "data") else request.POST)
    if not form.is_valid():
        raise importing.ImportRefused(_problems(form.errors))
    return importing.import_uploads(
        options=form.validated_data, files=request.FILES, content_length=content_length, actor=request.user
    )


def _problems(errors: dict) -> str:
    return "; ".join(
        f"{'' if field == 'non_field_errors' else field + ': '}{' '.join(map(str, msgs))}"
        for field, msgs in errors.items()
    )


def export_options(params) -> exporting.ExportOptions:
    data = ExportInput(data=params)
    data.is_valid(raise_exception=True)
    return data.validated_data


def export_response(options: exporting.ExportOptions) -> StreamingHttpResponse:
    response = StreamingHttpResponse(exporting.iter_zip(options), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="bus-review-export.zip"'
    return response


@extend_schema(parameters=[ExportInput], responses={(200, "application/zip"): OpenApiTypes.BINARY})
@api_view(["GET"])
@gate(permissions.EXPORT)
def export(request):
    """The consensus dataset as a ZIP (streamed)."""
    return export_response(export_options(request.query_params))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@gate(permissions.AUDIT)
def stats(request):
    """Image counts by status, overall and per patient (curators)."""
    return Response({**selectors.status_counts(), "agreement": selectors.agreement()})


class ExportJobStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ExportJob.Status.choices)
    percent = serializers.IntegerField()
    images = serializers.IntegerField()
    size = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    options = serializers.DictField()
    created_at = serializers.DateTimeField()


class ExportJobViewSet(viewsets.ViewSet):
    """Exports too large to stream while the browser waits run as jobs on an RQ worker."""

    lookup_value_regex = "[0-9]+"
    permission_classes = [permissions.Gate]
    required_action = permissions.EXPORT

    @extend_schema(operation_id="export_jobs_list", responses=ExportJobStateSerializer(many=True))
    def list(self, request):
        return Response([jobs.state(job) for job in ExportJob.objects.all()[:20]])

    @extend_schema(request=ExportInput, responses={201: ExportJobStateSerializer, 503: ErrorSerializer})
    def create(self, request):
        options = export_options(request.data)
        try:
            job = jobs.start_export(user=request.user, options=options)
        except jobs.QueueUnavailable as e:
            return Response({"code": e.code, "detail": str(e)}, status=e.http_status)
        return Response(jobs.state(job), status=201)

    @extend_schema(parameters=[JOB_ID], responses=ExportJobStateSerializer)
    def retrieve(self, request, pk=None):
        return Response(jobs.state(get_object_or_404(ExportJob, pk=pk)))

    @extend_schema(parameters=[JOB_ID], responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        job = get_object_or_404(ExportJob, pk=pk)
        if job.status != ExportJob.Status.DONE:
            raise ValidationError({"detail": f"export {job.pk} is {job.status}, not done"})
        response = StreamingHttpResponse(jobs.iter_download(job), content_type="application/zip")
        response["Content-Length"] = str(job.size)
        response["Content-Disposition"] = f'attachment; filename="bus-review-export-{job.pk}.zip"'
        return response


SettingsOutput = inline_serializer(
    "DatasetSettings",
    {
        "descriptors": serializers.CharField(),
        "updated_at": serializers.DateTimeField(allow_null=True),
        "lexicon": serializers.JSONField(),
    },
)


@extend_schema(methods=["GET"], responses=SettingsOutput)
@extend_schema(methods=["PUT"], request=SettingsInput, responses={200: SettingsOutput, 403: ErrorSerializer})
@api_view(["GET", "PUT"])
@permission_classes([permissions.Gate.for_methods({"PUT": permissions.CONFIGURE})])
def dataset_settings_view(request):
    """The dataset settings (any signed-in user reads them: the pages need the descriptor mode and
    the BI-RADS lexicon); a curator changes them (audited)."""
    if request.method == "PUT":
        data = valid(SettingsInput, request)
        try:
            dataset_settings.set_descriptor_mode(mode=data["descriptors"], user=request.user)
        except dataset_settings.SettingsError as e:
            return Response({"code": e.code, "detail": e.message}, status=e.http_status)
    return Response(dataset_settings.as_json())
