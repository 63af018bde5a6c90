from annotator.permissions import API_DOCS, has_role_action, roles_of


def roles(request) -> dict:
    user = getattr(request, "user", None)
    return {"user_roles": sorted(roles_of(user)), "show_api_link": has_role_action(user, API_DOCS)}
