from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from annotator import api as annotator_api
from busreview import api as common_api
from busreview import views as site_views
from curator import api as curator_api
from reviewer import api as reviewer_api

router = DefaultRouter()
router.trailing_slash = "/?"  # both /api/images/1/ and /api/images/1/image.png
# Each app owns its endpoints; the image's workflow actions sit side by side under /api/images/{id}/.
router.register("images", annotator_api.ImageViewSet, basename="image")
router.register("images", reviewer_api.ReviewDecisionViewSet, basename="image-decision")
router.register("images", curator_api.ReopenViewSet, basename="image-reopen")
router.register("images", curator_api.RedactViewSet, basename="image-redact")
router.register("layers", annotator_api.LayerViewSet, basename="layer")
router.register("reviews", annotator_api.ReviewViewSet, basename="review")
router.register("audit", curator_api.AuditViewSet, basename="audit")
router.register("export-jobs", curator_api.ExportJobViewSet, basename="export-job")

api_patterns = [
    path("", include(router.urls)),
    path("assign/", curator_api.assign, name="assign"),
    path("import/", curator_api.import_files, name="import"),
    path("export/", curator_api.export, name="export"),
    path("stats/", curator_api.stats, name="stats"),
    path("settings/", curator_api.dataset_settings_view, name="settings"),
    path("review-queue/next/", reviewer_api.review_queue_next, name="review-queue-next"),
    path("my-images/next/", annotator_api.my_images_next, name="my-images-next"),
    path("whoami/", common_api.whoami, name="whoami"),
    path("token/", site_views.ObtainTokenView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("", site_views.home, name="home"),
    path("accounts/login/", site_views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin logs in through the same throttled login page as everyone else.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/", include((api_patterns, "api"))),
    path("", include("annotator.urls")),
    path("", include("reviewer.urls")),
    path("", include("curator.urls")),
]
