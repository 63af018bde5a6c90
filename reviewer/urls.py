from django.urls import path

from reviewer import views

app_name = "reviewer"
urlpatterns = [
    path("review/", views.queue, name="queue"),
    path("images/<int:image_id>/review/", views.review, name="review"),
]
