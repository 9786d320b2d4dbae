"""The example site's routes: its own pages, and the chat under /chat/."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from django.views.generic import TemplateView

from chat import views as chat_views

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # A page of the site's own with the chat client in it ({% multichat %}).
    path("lounge/", TemplateView.as_view(template_name="lounge.html"), name="lounge"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("chat/", include("chat.urls")),
    path("healthz", chat_views.healthz, name="healthz"),  # optional: for a load balancer
]
if settings.DEBUG:
    urlpatterns += staticfiles_urlpatterns()
