from django.contrib import admin

from annotator.models import AuditEvent, Image, Lesion, MaskLayer, Patient, Review


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["code", "created_at"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "annotator", "width", "height", "doppler", "marks", "combined"]
    list_filter = ["status", "doppler", "marks", "combined"]
    search_fields = ["name"]
    # Status changes go through the workflow only.
    readonly_fields = ["status", "consensus", "checksum", "width", "height"]


class LesionInline(admin.TabularInline):
    model = Lesion
    extra = 0
    readonly_fields = ["index", "label", "points", "holes", "area_px"]
    can_delete = False


@admin.register(MaskLayer)
class MaskLayerAdmin(admin.ModelAdmin):
    list_display = ["image", "revision", "author", "status", "version", "source"]
    list_filter = ["status", "source"]
    readonly_fields = [f.name for f in MaskLayer._meta.fields]
    inlines = [LesionInline]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["image", "decision", "reviewer", "created_at"]
    readonly_fields = [f.name for f in Review._meta.fields]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "image", "action", "from_status", "to_status"]
    list_filter = ["action"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False
