"""What every API endpoint shares: the error format, and whoami (see ``busreview.rest`` for the parser
and pagination, which DRF loads while it starts)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotator import importing, permissions, workflow
from annotator.models import MaskLayer

ErrorSerializer = inline_serializer("Error", {"code": serializers.CharField(), "detail": serializers.CharField()})


def exception_handler(exc, context):
    """Workflow errors become {code, detail, ...}; a stale save also returns the current layer."""
    if isinstance(exc, workflow.WorkflowError):
        body = {"code": exc.code, "detail": exc.message, **exc.extra}
        if isinstance(exc, workflow.StaleVersion) and "layer_id" in exc.extra:
            from annotator.serializers import LayerSerializer

            body["current"] = LayerSerializer(MaskLayer.objects.get(pk=exc.extra["layer_id"])).data
        return Response(body, status=exc.http_status)
    if isinstance(exc, importing.ImportRefused):
        return Response({"code": "import_refused", "detail": str(exc)}, status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(response.data["detail"], "code", "error"))
    return response


@extend_schema(
    responses=inline_serializer(
        "WhoAmI", {"username": serializers.CharField(), "roles": serializers.ListField(child=serializers.CharField())}
    )
)
@api_view(["GET"])
def whoami(request):
    """The authenticated user and their roles (also the benchmark's floor: the cheapest endpoint)."""
    return Response({"username": request.user.get_username(), "roles": sorted(permissions.roles_of(request.user))})
