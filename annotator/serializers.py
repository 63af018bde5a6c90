"""API shapes. Input serializers only check shape; the workflow and geometry check meaning."""

from __future__ import annotations

from rest_framework import serializers

from annotator.models import PATIENT_CODE, AuditEvent, Image, Lesion, MaskLayer, Remark, Review, Status


class LesionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lesion
        fields = ["id", "index", "label", "points", "holes", "area_px"]


class LayerSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    lesions = LesionSerializer(many=True, read_only=True)

    class Meta:
        model = MaskLayer
        fields = [
            "id",
            "image",
            "author",
            "revision",
            "status",
            "version",
            "source",
            "is_normal",
            "doppler",
            "marks",
            "combined",
            "note",
            "lesions",
            "based_on",
            "created_at",
            "updated_at",
            "submitted_at",
        ]


class RemarkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Remark
        fields = ["x", "y", "lesion", "text"]


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    remarks = RemarkSerializer(many=True, read_only=True)

    class Meta:
        model = Review
        fields = ["id", "image", "layer", "decision", "comment", "dice", "reviewer", "created_at", "remarks"]


class ImageListSerializer(serializers.ModelSerializer):
    patient = serializers.SlugRelatedField(slug_field="code", read_only=True)
    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "name",
            "patient",
            "width",
            "height",
            "pixel_spacing_mm",
            "status",
            "annotator",
            "doppler",
            "marks",
            "combined",
            "consensus",
            "updated_at",
        ]


class ImageDetailSerializer(ImageListSerializer):
    open_layer = serializers.SerializerMethodField()
    consensus = serializers.SerializerMethodField()
    previous_layer = serializers.SerializerMethodField()
    reviews = serializers.SerializerMethodField()
    can_annotate = serializers.SerializerMethodField()
    can_review = serializers.SerializerMethodField()
    next_id = serializers.SerializerMethodField()

    class Meta(ImageListSerializer.Meta):
        fields = [
            *ImageListSerializer.Meta.fields,
            "open_layer",
            "previous_layer",
            "reviews",
            "can_annotate",
            "can_review",
            "next_id",
        ]

    def _ctx(self, key):
        return self.context.get(key)

    def get_open_layer(self, obj) -> dict | None:
        layer = self._ctx("open_layer")
        return LayerSerializer(layer).data if layer else None

    def get_consensus(self, obj) -> dict | None:
        return LayerSerializer(obj.consensus).data if obj.consensus_id else None

    def get_previous_layer(self, obj) -> dict | None:
        layer = self._ctx("previous_layer")
        return LayerSerializer(layer).data if layer else None

    def get_reviews(self, obj) -> list[dict]:
        return ReviewSerializer(obj.reviews.prefetch_related("remarks").select_related("reviewer"), many=True).data

    def get_can_annotate(self, obj) -> bool:
        return bool(self._ctx("can_annotate"))

    def get_can_review(self, obj) -> bool:
        return bool(self._ctx("can_review"))

    def get_next_id(self, obj) -> int | None:
        return self._ctx("next_id")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    image = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "image", "layer", "action", "from_status", "to_status", "detail"]


# --- inputs -----------------------------------------------------------------------------------


class LayerContentInput(serializers.Serializer):
    lesions = serializers.ListField(child=serializers.JSONField(), required=False, default=list)
    is_normal = serializers.BooleanField(required=False, default=False)
    doppler = serializers.BooleanField(required=False, default=False)
    marks = serializers.BooleanField(required=False, default=False)
    combined = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class SaveLayerInput(LayerContentInput):
    version = serializers.IntegerField(min_value=1)


class VersionInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)


class ApproveInput(VersionInput):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class RemarkInput(serializers.Serializer):
    x = serializers.FloatField(required=False, allow_null=True, default=None)
    y = serializers.FloatField(required=False, allow_null=True, default=None)
    lesion = serializers.IntegerField(required=False, allow_null=True, default=None)
    text = serializers.CharField(max_length=2000)


class SendBackInput(VersionInput):
    comment = serializers.CharField(max_length=4000)
    remarks = RemarkInput(many=True, required=False, default=list)


class EditApproveInput(ApproveInput):
    layer = LayerContentInput()


class ReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)


class AssignInput(serializers.Serializer):
    images = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    patients = serializers.ListField(child=serializers.CharField(max_length=4), required=False, default=list)
    annotator = serializers.CharField(allow_null=True)


class ExportInput(serializers.Serializer):
    formats = serializers.CharField(required=False, default="bus-uclm,coco")
    patients = serializers.CharField(required=False, default="", allow_blank=True)
    exclude_doppler = serializers.BooleanField(required=False, default=False)
    exclude_marks = serializers.BooleanField(required=False, default=False)
    exclude_combined = serializers.BooleanField(required=False, default=False)


class ProposeInput(serializers.Serializer):
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, required=False)
    point = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, required=False)


class ProposalSerializer(serializers.Serializer):
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


class ImageFilterInput(serializers.Serializer):
    """Query-string filters of image lists (API and curator pages); CharField refuses NUL bytes."""

    status = serializers.CharField(required=False, allow_blank=True, max_length=200)
    patient = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    search = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def validate_status(self, value: str) -> list[str]:
        statuses = _csv(value)
        unknown = [s for s in statuses if s not in Status.values]
        if unknown:
            raise serializers.ValidationError(f"unknown status {unknown[0]!r}; one of {', '.join(Status.values)}")
        return statuses

    def validate_patient(self, value: str) -> list[str]:
        codes = [c.upper() for c in _csv(value)]
        for code in codes:
            PATIENT_CODE(code)
        return codes


class AuditFilterInput(serializers.Serializer):
    image = serializers.CharField(required=False, allow_blank=True, max_length=64)
