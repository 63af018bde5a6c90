"""The reviewer's API: decide on a submitted image (approve, edit then approve, send back), adjudicate a
blind double reading (approve one reading, edit from one or from their union / intersection, send
readings back), and the queue."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.response import Response

from annotator import adjudication, permissions, selectors, workflow
from annotator.api import after_param, valid
from annotator.models import Image
from annotator.serializers import (
    AdjudicateEditInput,
    AdjudicateInput,
    ApproveInput,
    CombineInput,
    EditApproveInput,
    ReturnReadingInput,
    ReviewSerializer,
    SendBackInput,
)


class ReviewDecisionViewSet(viewsets.GenericViewSet):
    """Decisions on ``/api/images/{id}/...``, next to the annotator's image endpoints."""

    permission_classes = [permissions.Gate]
    required_action = permissions.REVIEW

    def get_queryset(self):
        return Image.objects.restrict(self.request.user, permissions.VIEW)

    @extend_schema(request=ApproveInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        image = self.get_object()
        data = valid(ApproveInput, request)
        review = workflow.approve(
            image_id=image.pk, user=request.user, comment=data["comment"], expected_version=data.get("version")
        )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=EditApproveInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"], url_path="edit-approve")
    def edit_approve(self, request, pk=None):
        image = self.get_object()
        data = valid(EditApproveInput, request, image=image)
        review = workflow.edit_and_approve(
            image_id=image.pk,
            user=request.user,
            content=data["layer"],
            comment=data["comment"],
            expected_version=data.get("version"),
        )
        return Response(ReviewSerializer(review).data)

    @extend_schema(request=SendBackInput, responses=ReviewSerializer)
    @action(detail=True, methods=["post"], url_path="send-back")
    def send_back(self, request, pk=None):
        image = self.get_object()
        data = valid(SendBackInput, request, image=image)
        review = workflow.send_back(
            image_id=image.pk,
            user=request.user,
            comment=data["comment"],
            remarks=data["remarks"],
            expected_version=data.get("version"),
        )
        return Response(ReviewSerializer(review).data)

    # --- blind double reading: the adjudicator ---------------------------------------------------

    @extend_schema(request=AdjudicateInput, responses=ReviewSerializer(many=True))
    @action(detail=True, methods=["post"])
    def adjudicate(self, request, pk=None):
        """Approve one reader's layer (``layer``: its id) unchanged as the consensus."""
        image = self.get_object()
        data = valid(AdjudicateInput, request)
        reviews = workflow.adjudicate(
            image_id=image.pk, user=request.user, layer_id=data["layer"], comment=data["comment"]
        )
        return Response(ReviewSerializer(reviews, many=True).data)

    @extend_schema(request=AdjudicateEditInput, responses=ReviewSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="adjudicate-edit")
    def adjudicate_edit(self, request, pk=None):
        """The adjudicator's drawing (``layer``), started from ``start_from`` (a reading's id,
        ``union`` or ``intersection``), becomes the consensus."""
        image = self.get_object()
        data = valid(AdjudicateEditInput, request, image=image)
        reviews = workflow.adjudicate_edit(
            image_id=image.pk,
            user=request.user,
            content=data["layer"],
            start_from=data["start_from"],
            comment=data["comment"],
        )
        return Response(ReviewSerializer(reviews, many=True).data)

    @extend_schema(request=ReturnReadingInput, responses=ReviewSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="return-reading")
    def return_reading(self, request, pk=None):
        """Send one or both readings (``layers``: ids) back to their readers with a comment."""
        image = self.get_object()
        data = valid(ReturnReadingInput, request)
        reviews = workflow.return_reading(
            image_id=image.pk, user=request.user, layer_ids=data["layers"], comment=data["comment"]
        )
        return Response(ReviewSerializer(reviews, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("operation", str, enum=list(adjudication.OPERATIONS), required=True)],
        responses=inline_serializer(
            "Combination",
            {
                "lesions": serializers.ListField(child=serializers.DictField()),
                "dropped_specks": serializers.IntegerField(),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def combined(self, request, pk=None):
        """The union or intersection of the two readings, as lesions for the adjudicator to edit
        (nothing is stored until ``adjudicate-edit``)."""
        image = self.get_object()
        operation = valid(CombineInput, request, data=request.query_params)["operation"]
        readings = selectors.submitted_readings(image)
        if readings is None:
            raise workflow.InvalidTransition(f"{image.name} has not both readings submitted", status=image.status)
        first, second = (layer.geometry_lesions() for layer in readings)
        result = adjudication.combine(first, second, image.width, image.height, operation)
        lesions = [{"label": les.label, "points": les.points, "holes": les.holes} for les in result.lesions]
        return Response({"lesions": lesions, "dropped_specks": result.dropped_specks})


@extend_schema(
    parameters=[OpenApiParameter("after", int, description="the image id to skip (the one just decided)")],
    responses=inline_serializer("NextId", {"id": serializers.IntegerField(allow_null=True)}),
)
@api_view(["GET"])
@permission_classes([permissions.Gate.for_action(permissions.REVIEW)])
def review_queue_next(request):
    """The next submitted image the reviewer may decide on."""
    return Response({"id": selectors.next_for_review(request.user, after=after_param(request))})
