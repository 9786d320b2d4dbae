"""Routes of the api app: the token pages and the REST API."""

from django.urls import path

from api import (
    users,  # noqa: F401  (importing it adds /api/me and /api/users to ``api``)
    views,
)
from api.api import api

urlpatterns = [
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/new/", views.token_create, name="token-create"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("api/", api.urls),
]
