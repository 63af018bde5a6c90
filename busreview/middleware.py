from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.utils.cache import add_never_cache_headers


class PagesLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a login. The API answers 401/403 itself (DRF's IsAuthenticated, with
    session or token auth), because a script must get an error, not a redirect to a login form."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Konva and the viewer set inline style attributes; no inline <style> or scripts are used.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """Headers Django does not set itself: a strict Content-Security-Policy and a Permissions-Policy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        return response


class FreshResponsesMiddleware:
    """Pages and API answers describe a workflow that moves on: never show a stale copy of them.

    Without a Cache-Control header a browser may serve a page or the image JSON from its cache
    (Back after Submit showed the old, editable draft). Pages are not stored at all. API JSON may be
    stored but is revalidated every time (ConditionalGetMiddleware adds the ETag and answers 304),
    so the next image's prefetch saves the transfer and never serves an old status. A view that
    knows better (the image's PNG bytes, which never change for an id) sets its own header.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            return response
        if request.path_info.startswith("/api/"):
            response["Cache-Control"] = "private, no-cache"
        else:
            add_never_cache_headers(response)
        return response
