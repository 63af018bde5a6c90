"""Background export jobs over the API: start one, follow its progress, download the ZIP."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from annotator import permissions
from annotator.api import export_options
from annotator.serializers import ExportInput
from curator import jobs
from curator.models import ExportJob

JOB_ID = OpenApiParameter("id", int, OpenApiParameter.PATH)
QueueError = inline_serializer("QueueError", {"code": serializers.CharField(), "detail": serializers.CharField()})


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

    def _check(self, request) -> None:
        if not permissions.can(request.user, permissions.EXPORT):
            raise PermissionDenied("only curators export")

    @extend_schema(operation_id="export_jobs_list", responses=ExportJobStateSerializer(many=True))
    def list(self, request):
        self._check(request)
        return Response([jobs.state(job) for job in ExportJob.objects.all()[:20]])

    @extend_schema(request=ExportInput, responses={201: ExportJobStateSerializer, 503: QueueError})
    def create(self, request):
        self._check(request)
        options = export_options(request.data)
        try:
            job = jobs.start_export(user=request.user, options=options)
        except jobs.QueueUnavailable as e:
            return Response({"code": e.code, "detail": str(e)}, status=e.http_status)
        return Response(jobs.state(job), status=201)

    @extend_schema(parameters=[JOB_ID], responses=ExportJobStateSerializer)
    def retrieve(self, request, pk=None):
        self._check(request)
        return Response(jobs.state(get_object_or_404(ExportJob, pk=pk)))

    @extend_schema(parameters=[JOB_ID], responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        self._check(request)
        job = get_object_or_404(ExportJob, pk=pk)
        if job.status != ExportJob.Status.DONE:
            raise ValidationError({"detail": f"export {job.pk} is {job.status}, not done"})
        response = StreamingHttpResponse(jobs.iter_download(job), content_type="application/zip")
        response["Content-Length"] = str(job.size)
        response["Content-Disposition"] = f'attachment; filename="bus-review-export-{job.pk}.zip"'
        return response
