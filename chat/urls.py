"""The chat's HTTP routes for a project that embeds it: ``path("chat/", include("chat.urls"))``.

The chat page, the browser's translated strings, attached files, the token pages and the
REST API, under whatever prefix the project picks (docs/embedding.md). Login, logout, the
admin and sign-up stay the project's own. The standalone server mounts the same views in
config/urls.py.
"""

from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chat import views

urlpatterns = [
    path("", views.home, name="chat"),
    # The UI's translated strings for the browser (window.gettext, used through chat/i18n.js).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    # Attached files (chat.files), for who may enter their post's room; the thumbnail first,
    # so that "thumb" is never a file's name (chat.files.safe_name renames one so named).
    path("files/<str:key>/thumb", views.attachment, name="chat-file-thumb"),
    path("files/<str:key>/<str:name>", views.attachment, name="chat-file"),
    path("", include("api.urls")),  # tokens/ and the REST API at api/
]
