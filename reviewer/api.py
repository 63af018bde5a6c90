"""The reviewer's API: decide on a submitted image (approve, edit then approve, send back) and the queue."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.response import Response

from annotator import permissions, selectors, workflow
from annotator.api import after_param, valid
from annotator.models import Image
from annotator.serializers import ApproveInput, EditApproveInput, ReviewSerializer, SendBackInput


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


@extend_schema(
    parameters=[OpenApiParameter("after", int, description="the image id to skip (the one just decided)")],
    responses=inline_serializer("NextId", {"id": serializers.IntegerField(allow_null=True)}),
)
@api_view(["GET"])
@permission_classes([permissions.Gate.for_action(permissions.REVIEW)])
def review_queue_next(request):
    """The next submitted image the reviewer may decide on."""
    return Response({"id": selectors.next_for_review(request.user, after=after_param(request))})
