"""An ordinary Django site that embeds multichat under /chat/ (docs/embedding.md).

It has its own user model (accounts.User, logged in by email), its own login page and
base template; the chat settings it leaves out keep their defaults (chat/conf.py).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HOSTSITE_DATA_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("SECRET_KEY", "hostsite-example-not-for-production")
DEBUG = os.environ.get("DEBUG", "1") == "1"  # the example serves its static files itself
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "accounts",  # the site's own user model, listed first: its templates win
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # What embedding the chat adds:
    "channels",
    "chat",
    "ninja",
    "api",
    "people",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hostsite.urls"
ASGI_APPLICATION = "hostsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "hostsite.sqlite3"}
}
# One process: the in-process layer. Several: channels_redis (docs/embedding.md).
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"

# The chat: its page inside this site's base template; everything else at its default.
CHAT_BASE_TEMPLATE = "site_base.html"
# People who set no display name in the chat show as the site names them.
CHAT_USER_DISPLAY_NAME = "get_full_name"
