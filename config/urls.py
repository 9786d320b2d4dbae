"""HTTP routes. The WebSocket route is in chat/routing.py."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import views

urlpatterns = [
    # The chat page at /, its /jsi18n/, /tokens/ and the REST API at /api/: the same
    # routes a project that embeds the chat includes under its own prefix.
    path("", include("chat.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language picker
    path("", include("people.urls")),  # /signup/ and the staff's /invitations/
]
