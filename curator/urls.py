from django.urls import path

from curator import views

app_name = "curator"
urlpatterns = [
    path("dataset/", views.dashboard, name="dashboard"),
    path("dataset/assign/", views.assign, name="assign"),
    path("dataset/images/<int:image_id>/reopen/", views.reopen, name="reopen"),
    path("dataset/import/", views.import_page, name="import"),
    path("dataset/redaction/", views.redaction_page, name="redaction"),
    path("dataset/export/", views.export_page, name="export"),
    path("dataset/audit/", views.audit, name="audit"),
    path("dataset/settings/", views.settings_page, name="settings"),
]
