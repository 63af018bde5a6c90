from django.contrib import admin

from annotator.models import PROVENANCE_FIELDS, AuditEvent, Image, Lesion, MaskLayer, Patient, Review

DICOM_FIELDS = [*PROVENANCE_FIELDS, "source_frame"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["code", "created_at"]


WORKFLOW_NOTE = (
    "Status, annotator, consensus and the Doppler / Marks / Combined flags change only through the "
    "review workflow, which checks the rules and writes the audit log: assign images on the Dataset "
    "page (/dataset/), reopen an approved image there, and let readers decide the rest."
)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "annotator", "width", "height", "doppler", "marks", "combined"]
    list_filter = ["status", "doppler", "marks", "combined"]
    search_fields = ["name"]
    # Only the pixel spacing is edited here. The workflow owns the status, the annotator (a draft's
    # author would lose access to it), the consensus and the flags copied from it; the import owns
    # the name, patient, size and checksum, which tie the row to its file.
    fieldsets = [
        (None, {"fields": ["pixel_spacing_mm"]}),
        (
            "Workflow (read-only here)",
            {
                "fields": ["status", "annotator", "second_annotator", "consensus", "doppler", "marks", "combined"],
                "description": WORKFLOW_NOTE,
            },
        ),
        ("Imported file (read-only)", {"fields": ["patient", "name", "number", "width", "height", "checksum"]}),
        ("DICOM calibration and provenance (read-only)", {"fields": DICOM_FIELDS}),
    ]
    readonly_fields = [
        "status",
        "annotator",
        "second_annotator",
        "consensus",
        "doppler",
        "marks",
        "combined",
        "patient",
        "name",
        "number",
        "width",
        "height",
        "checksum",
        *DICOM_FIELDS,
    ]

    def has_add_permission(self, request) -> bool:
        return False  # images come in through the import, which checks and stores the pixels


class LesionInline(admin.TabularInline):
    model = Lesion
    extra = 0
    readonly_fields = ["index", "label", "points", "holes", "area_px"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MaskLayer)
class MaskLayerAdmin(admin.ModelAdmin):
    list_display = ["image", "revision", "author", "status", "version", "source"]
    list_filter = ["status", "source"]
    readonly_fields = [f.name for f in MaskLayer._meta.fields]
    inlines = [LesionInline]

    def has_add_permission(self, request) -> bool:
        return False  # layers are made by the workflow (start, edit & approve) and the import


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["image", "decision", "reviewer", "created_at"]
    readonly_fields = [f.name for f in Review._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "image", "action", "from_status", "to_status"]
    list_filter = ["action"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None):
        return False
