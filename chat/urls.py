"""The chat's HTTP routes for a project that embeds it: ``path("chat/", include("chat.urls"))``.

The chat page, the browser's translated strings, the token pages and the REST API, under
whatever prefix the project picks (docs/embedding.md). Login, logout, the admin and sign-up
stay the project's own. The standalone server mounts the same views in config/urls.py.
"""

from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chat import views

urlpatterns = [
    path("", views.home, name="chat"),
    # The UI's translated strings for the browser (window.gettext, used through chat/i18n.js).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("api.urls")),  # tokens/ and the REST API at api/
]
