from django.contrib.auth.middleware import LoginRequiredMiddleware


class PagesLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a login. The API answers 401/403 itself (DRF's IsAuthenticated, with
    session or token auth), because a script must get an error, not a redirect to a login form."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
