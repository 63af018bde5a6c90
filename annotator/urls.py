from django.urls import path

from annotator import views

app_name = "annotator"
urlpatterns = [
    path("my-images/", views.worklist, name="worklist"),
    path("images/<int:image_id>/annotate/", views.annotate, name="annotate"),
    path("agreement/", views.agreement_page, name="agreement"),
]
