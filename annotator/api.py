"""REST API: thin views over the workflow, the selectors and the import/export services."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, parser_classes
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotator import exporting, geometry, importing, permissions, selectors, smart_contour, workflow
from annotator.exporting.base import encode_png
from annotator.models import AuditEvent, Image, MaskLayer, Review
from annotator.serializers import (
    ApproveInput,
    AssignInput,
    AuditEventSerializer,
    AuditFilterInput,
    EditApproveInput,
    ExportInput,
    ImageDetailSerializer,
    ImageFilterInput,
    ImageListSerializer,
    LayerSerializer,
    ProposalSerializer,
    ProposeInput,
    ReopenInput,
    ReviewSerializer,
    SaveLayerInput,
    SendBackInput,
    VersionInput,
)

ErrorSerializer = inline_serializer("Error", {"code": serializers.CharField(), "detail": serializers.CharField()})


def exception_handler(exc, context):
    """Workflow errors become {code, detail, ...}; a stale save also returns the current layer."""
    if isinstance(exc, workflow.WorkflowError):
        body = {"code": exc.code, "detail": exc.message, **exc.extra}
        if isinstance(exc, workflow.StaleVersion) and "layer_id" in exc.extra:
            body["current"] = LayerSerializer(MaskLayer.objects.get(pk=exc.extra["layer_id"])).data
        return Response(body, status=exc.http_status)
    if isinstance(exc, importing.ImportRefused):
        return Response({"code": "import_refused", "detail": str(exc)}, status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(response.data["detail"], "code", "error"))
    return response


def _content(data: dict, image: Image) -> workflow.LayerContent:
    return workflow.parse_content(data, image)


def _png_response(data: bytes, name: str) -> HttpResponse:
    response = HttpResponse(bytes(data), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Images the user may see, with their layers, reviews and workflow actions."""

    def get_queryset(self):
        qs = permissions.restrict(Image.objects.all(), self.request.user, permissions.VIEW)
        qs = qs.select_related("patient", "annotator")
        if self.action == "list":
            filters = ImageFilterInput(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            qs = selectors.filter_images(qs, filters.validated_data)
        return qs.order_by("name")

    def get_serializer_class(self):
        return ImageDetailSerializer if self.action == "retrieve" else ImageListSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="comma-separated statuses"),
            OpenApiParameter("patient", str, description="comma-separated patient codes"),
            OpenApiParameter("search", str),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        image = self.get_object()
        image = Image.objects.select_related("patient", "annotator", "consensus").get(pk=image.pk)
        context = selectors.image_context(image, request.user)
        return Response(ImageDetailSerializer(image, context=context).data)

    def _image(self, pk) -> Image:
        return get_object_or_404(self.get_queryset(), pk=pk)

    @extend_schema(request=None, responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="image.png")
    def image_png(self, request, pk=None):
        image = self._image(pk)
        return _png_response(image.data.png, image.name)

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("layer", int, description="a layer id; default: the consensus")],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="mask.png")
    def mask_png(self, request, pk=None):
        image = self._image(pk)
        layer_id = request.query_params.get("layer")
        if layer_id:
            if not str(layer_id).isdigit():
                raise ValidationError({"layer": "must be a layer id"})
            layer = get_object_or_404(MaskLayer, pk=layer_id, image=image)
        else:
            layer = image.consensus
            if layer is None:
                raise ValidationError({"detail": f"{image.name} has no consensus yet"})
        rgb = geometry.rasterise(layer.geometry_lesions(), image.width, image.height)
        return _png_response(encode_png(rgb), image.name)

    @extend_schema(responses=LayerSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def layers(self, request, pk=None):
        image = self._image(pk)
        layers = image.layers.select_related("author").prefetch_related("lesions").order_by("revision")
        return Response(LayerSerializer(layers, many=True).data)

    @extend_schema(request=None, responses=LayerSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        image = self._image(pk)
        layer = workflow.start(image_id=image.pk, user=request.user)
        return Response(LayerSerializer(layer).data)

    @extend_schema(request=ApproveInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        image = self._image(pk)
        data = _valid(ApproveInput, request)
        review = workflow.approve(
            image_id=image.pk, user=request.user, comment=data["comment"], expected_version=data.get("version")
        )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=EditApproveInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"], url_path="edit-approve")
    def edit_approve(self, request, pk=None):
        image = self._image(pk)
        data = _valid(EditApproveInput, request)
        review = workflow.edit_and_approve(
            image_id=image.pk,
            user=request.user,
            content=_content(request.data.get("layer"), image),
            comment=data["comment"],
            expected_version=data.get("version"),
        )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=SendBackInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"], url_path="send-back")
    def send_back(self, request, pk=None):
        image = self._image(pk)
        data = _valid(SendBackInput, request)
        review = workflow.send_back(
            image_id=image.pk,
            user=request.user,
            comment=data["comment"],
            remarks=data["remarks"],
            expected_version=data.get("version"),
        )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=ProposeInput, responses=ProposalSerializer)
    @action(detail=True, methods=["post"])
    def propose(self, request, pk=None):
        """A proposed contour (smart contour) for the lesion in a box or under a clicked point, to edit."""
        image = self._image(pk)
        if not (
            permissions.can(request.user, permissions.ANNOTATE, image)
            or permissions.can(request.user, permissions.REVIEW, image)
        ):
            raise PermissionDenied("only the image's readers ask for proposals")
        data = _valid(ProposeInput, request)
        try:
            gray = smart_contour.decode_gray(image.data.png)
            points = smart_contour.propose(gray, box=data.get("box"), point=data.get("point"))
        except smart_contour.ProposalError as e:
            raise ValidationError({"detail": str(e)})
        return Response({"points": points})

    @extend_schema(request=ReopenInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        image = self._image(pk)
        data = _valid(ReopenInput, request)
        review = workflow.reopen(image_id=image.pk, user=request.user, reason=data["reason"])
        return Response(ReviewSerializer(review).data)


class LayerViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A reader's mask layer: read it, save the draft (with its version), submit it."""

    serializer_class = LayerSerializer

    def get_queryset(self):
        images = permissions.restrict(Image.objects.all(), self.request.user, permissions.VIEW)
        layers = MaskLayer.objects.filter(image__in=images)
        if self.action == "retrieve":
            return layers.select_related("author").prefetch_related("lesions")
        return layers.select_related("image")

    @extend_schema(request=SaveLayerInput, responses={200: LayerSerializer, 409: OpenApiTypes.OBJECT})
    def update(self, request, pk=None):
        layer = self.get_object()
        data = _valid(SaveLayerInput, request)
        saved = workflow.save_draft(
            layer_id=layer.pk,
            user=request.user,
            content=_content(request.data, layer.image),
            expected_version=data["version"],
        )
        return Response(LayerSerializer(saved).data)  # the author came with it; one query for the lesions

    @extend_schema(request=VersionInput, responses=LayerSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        layer = self.get_object()
        data = _valid(VersionInput, request)
        submitted = workflow.submit(layer_id=layer.pk, user=request.user, expected_version=data.get("version"))
        return Response(LayerSerializer(MaskLayer.objects.get(pk=submitted.pk)).data)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ReviewViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ReviewSerializer

    def get_queryset(self):
        images = permissions.restrict(Image.objects.all(), self.request.user, permissions.VIEW)
        return (
            Review.objects.filter(image__in=images)
            .select_related("reviewer")
            .prefetch_related("remarks")
            .order_by("-created_at")
        )


class AuditViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AuditEvent.objects.none()
        if not permissions.can(self.request.user, permissions.AUDIT):
            raise PermissionDenied("only curators read the audit log")
        qs = AuditEvent.objects.select_related("actor", "image")
        filters = AuditFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        if filters.validated_data.get("image"):
            qs = qs.filter(image__name=filters.validated_data["image"])
        return qs


def _require(user, action_name: str) -> None:
    if not permissions.can(user, action_name):
        raise PermissionDenied(f"your role does not allow {action_name}")


@extend_schema(request=AssignInput, responses=inline_serializer("Assigned", {"assigned": serializers.IntegerField()}))
@api_view(["POST"])
def assign(request):
    _require(request.user, permissions.ASSIGN)
    data = _valid(AssignInput, request)
    annotator = None
    if data["annotator"]:
        annotator = get_user_model().objects.filter(username=data["annotator"]).first()
        if annotator is None:
            raise ValidationError({"annotator": f"no user {data['annotator']}"})
    ids = set(data["images"]) | set(
        Image.objects.filter(patient__code__in=data["patients"]).values_list("pk", flat=True)
    )
    if not ids:
        raise ValidationError({"images": "name at least one image or patient"})
    count = workflow.assign(image_ids=sorted(ids), annotator=annotator, user=request.user)
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
            },
        )
    },
    responses=OpenApiTypes.OBJECT,
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def import_files(request):
    _require(request.user, permissions.IMPORT)
    report = run_upload_import(request)
    # Nothing usable at all is a client error; a partial import is a success with a defect list.
    nothing = report.failed and not report.imported and not report.unchanged
    return Response(report.as_dict(), status=status.HTTP_400_BAD_REQUEST if nothing else status.HTTP_200_OK)


def run_upload_import(request) -> importing.ImportReport:
    """Shared by the API and the curator's import page (a DRF or a plain Django request)."""
    content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    # Refuse an oversized upload before the body is read (parsing it would spool it to disk).
    importing.check_upload_size(content_length)
    data = request.data if hasattr(request, "data") else request.POST
    return importing.import_uploads(data=data, files=request.FILES, content_length=content_length, actor=request.user)


def export_options(params) -> exporting.ExportOptions:
    serializer = ExportInput(data=params)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    formats = [f.strip() for f in data["formats"].split(",") if f.strip()]
    unknown = [f for f in formats if f not in exporting.FORMATS]
    if unknown or not formats:
        raise ValidationError({"formats": f"known formats: {', '.join(exporting.FORMATS)}"})
    return exporting.ExportOptions(
        formats=formats,
        patients=[p.strip().upper() for p in data["patients"].split(",") if p.strip()],
        exclude_doppler=data["exclude_doppler"],
        exclude_marks=data["exclude_marks"],
        exclude_combined=data["exclude_combined"],
    )


def export_response(options: exporting.ExportOptions) -> StreamingHttpResponse:
    response = StreamingHttpResponse(exporting.iter_zip(options), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="bus-review-export.zip"'
    return response


@extend_schema(parameters=[ExportInput], responses={(200, "application/zip"): OpenApiTypes.BINARY})
@api_view(["GET"])
def export(request):
    """The consensus dataset as a ZIP (streamed)."""
    _require(request.user, permissions.EXPORT)
    return export_response(export_options(request.query_params))


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def stats(request):
    """Image counts by status, overall and per patient (curators)."""
    _require(request.user, permissions.AUDIT)
    return Response({**selectors.status_counts(), "agreement": selectors.agreement()})


@extend_schema(responses=inline_serializer("NextId", {"id": serializers.IntegerField(allow_null=True)}))
@api_view(["GET"])
def review_queue_next(request):
    return Response({"id": selectors.next_for_review(request.user, after=_after(request))})


@extend_schema(responses=inline_serializer("NextMine", {"id": serializers.IntegerField(allow_null=True)}))
@api_view(["GET"])
def my_images_next(request):
    return Response({"id": selectors.next_to_annotate(request.user, after=_after(request))})


def _after(request) -> int | None:
    after = request.query_params.get("after")
    return int(after) if after and after.isdigit() else None


@extend_schema(
    responses=inline_serializer(
        "WhoAmI", {"username": serializers.CharField(), "roles": serializers.ListField(child=serializers.CharField())}
    )
)
@api_view(["GET"])
def whoami(request):
    """The authenticated user and their roles (also the benchmark's floor: the cheapest endpoint)."""
    return Response({"username": request.user.get_username(), "roles": sorted(permissions.roles_of(request.user))})
