"""The annotator's API: images and their pixels, layers (start, save, submit), reviews, proposals.

Thin views: the ``Gate`` decides who may act (before the body is read), an input serializer
validates once and returns typed content, the workflow acts.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from annotator import geometry, permissions, selectors, smart_contour, thumbnails, workflow
from annotator.exporting.base import encode_png
from annotator.models import Image, MaskLayer, Review
from annotator.serializers import (
    IdInput,
    ImageDetailSerializer,
    ImageFilterInput,
    ImageListSerializer,
    LayerSerializer,
    ProposalSerializer,
    ProposeInput,
    ReviewSerializer,
    SaveLayerInput,
    VersionInput,
)


def valid(serializer_class, request, *, data=None, **context) -> dict:
    """The validated data of ``serializer_class`` over the request body (or ``data``)."""
    serializer = serializer_class(data=request.data if data is None else data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def png_response(data: bytes, name: str) -> HttpResponse:
    response = HttpResponse(bytes(data), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Images the user may see, with their layers and reviews; the annotator opens a draft here."""

    permission_classes = [permissions.Gate]
    required_action = permissions.VIEW
    required_actions = {"start": permissions.ANNOTATE, "propose": permissions.DRAW}

    def get_queryset(self):
        qs = Image.objects.restrict(self.request.user, permissions.VIEW).select_related("patient", "annotator")
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
            OpenApiParameter("page_size", int, description="rows per page, 50 by default, at most 500"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        image = self.get_object()
        image = Image.objects.select_related("patient", "annotator", "consensus").get(pk=image.pk)
        context = selectors.image_context(image, request.user)
        return Response(ImageDetailSerializer(image, context=context).data)

    @extend_schema(request=None, responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="image.png")
    def image_png(self, request, pk=None):
        image = self.get_object()
        return png_response(image.data.png, image.name)

    @extend_schema(request=None, responses={(200, "image/png"): OpenApiTypes.BINARY, 304: None})
    @action(detail=True, methods=["get"], url_path="thumb.png")
    def thumb_png(self, request, pk=None):
        """A small preview (at most 160 px a side) for lists; seen by whoever may see the image."""
        image = self.get_object()
        etag = f'"{image.checksum}"'
        if etag in request.headers.get("If-None-Match", ""):
            response = HttpResponse(status=304)
        else:
            thumb = thumbnails.thumbnail(image.checksum, lambda: bytes(image.data.png))
            response = png_response(thumb, f"thumb-{image.name}")
        response["ETag"] = etag
        return response

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("layer", int, description="a layer id; default: the consensus")],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="mask.png")
    def mask_png(self, request, pk=None):
        image = self.get_object()
        if "layer" in request.query_params:
            layer_id = valid(IdInput, request, data={"id": request.query_params["layer"]})["id"]
            layer = get_object_or_404(MaskLayer, pk=layer_id, image=image)
            layer.image = image
            if not permissions.may_see_layer(request.user, layer):  # the other reader's, read blind
                raise Http404("no such layer")
        else:
            layer = image.consensus
            if layer is None:
                raise ValidationError({"detail": f"{image.name} has no consensus yet"})
        rgb = geometry.rasterise(layer.geometry_lesions(), image.width, image.height)
        response = png_response(encode_png(rgb), image.name)
        response["Cache-Control"] = "private, no-cache"  # a draft's mask and the consensus change
        return response

    @extend_schema(responses=LayerSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def layers(self, request, pk=None):
        image = self.get_object()
        layers = (
            image.layers.exclude(permissions.blind_layers(request.user))
            .select_related("author")
            .prefetch_related("lesions")
            .order_by("revision")
        )
        return Response(LayerSerializer(layers, many=True).data)

    @extend_schema(request=None, responses=LayerSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        image = self.get_object()
        # One endpoint for both modes: the workflow refuses the wrong one (409) if the mode changed meanwhile.
        start = workflow.start_reading if image.is_double_read else workflow.start
        layer = start(image_id=image.pk, user=request.user)
        return Response(LayerSerializer(layer).data)

    @extend_schema(request=ProposeInput, responses=ProposalSerializer)
    @action(detail=True, methods=["post"])
    def propose(self, request, pk=None):
        """A proposed contour (smart contour) for the lesion in a box or under a clicked point, to edit;
        ``inside``/``outside`` points correct it (the same box or point, plus the reader's clicks)."""
        image = self.get_object()
        data = valid(ProposeInput, request)
        try:
            gray = smart_contour.decode_gray(image.data.png)
            points = smart_contour.propose(
                gray,
                box=data.get("box"),
                point=data.get("point"),
                inside=data.get("inside", []),
                outside=data.get("outside", []),
            )
        except smart_contour.ProposalError as e:
            raise ValidationError({"detail": str(e)}) from None
        return Response({"points": points})


class LayerViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A reader's mask layer: read it, save the draft (with its version), submit it."""

    serializer_class = LayerSerializer
    lookup_value_regex = "[0-9]{1,18}"
    permission_classes = [permissions.Gate]
    required_action = permissions.VIEW
    required_actions = {"update": permissions.ANNOTATE, "submit": permissions.ANNOTATE}

    def get_queryset(self):
        layers = permissions.restrict_layers(MaskLayer.objects.all(), self.request.user)
        if self.action == "retrieve":
            return layers.select_related("author").prefetch_related("lesions")
        return layers.select_related("image")

    def get_object(self):
        layer = super().get_object()
        # Only the draft's author edits it: decided before the body is parsed.
        if self.action in ("update", "submit") and not permissions.may_edit_layer(self.request.user, layer):
            raise workflow.NotAllowed(f"only the assigned annotator edits the draft of {layer.image.name}")
        return layer

    @extend_schema(request=SaveLayerInput, responses={200: LayerSerializer, 409: OpenApiTypes.OBJECT})
    def update(self, request, pk=None):
        # The autosave path: one validation pass over the body except the drawing; the workflow
        # reads and locks the layer once, decides who may edit it, and only then has the drawing
        # checked against the image (no separate read through get_object).
        body = SaveLayerInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        saved = workflow.save_draft(
            layer_id=int(pk),
            user=request.user,
            content=lambda image: body.content(data, image),
            expected_version=data["version"],
        )
        return Response(LayerSerializer(saved).data)

    @extend_schema(request=VersionInput, responses=LayerSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        layer = self.get_object()
        data = valid(VersionInput, request)
        submit = workflow.submit_reading if layer.image.is_double_read else workflow.submit
        submitted = submit(layer_id=layer.pk, user=request.user, expected_version=data.get("version"))
        return Response(LayerSerializer(MaskLayer.objects.get(pk=submitted.pk)).data)


class ReviewViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ReviewSerializer

    def get_queryset(self):
        return (
            permissions.restrict_reviews(Review.objects.all(), self.request.user)
            .select_related("reviewer")
            .prefetch_related("remarks")
            .order_by("-created_at")
        )


@extend_schema(
    parameters=[OpenApiParameter("after", int, description="the image id to skip (the one just done)")],
    responses=inline_serializer("NextMine", {"id": serializers.IntegerField(allow_null=True)}),
)
@api_view(["GET"])
@permission_classes([permissions.Gate.for_action(permissions.ANNOTATE)])
def my_images_next(request):
    """The next image of the annotator's worklist."""
    return Response({"id": selectors.next_to_annotate(request.user, after=after_param(request))})


def after_param(request) -> int | None:
    if "after" not in request.query_params:
        return None
    return valid(IdInput, request, data={"id": request.query_params["after"]})["id"]
