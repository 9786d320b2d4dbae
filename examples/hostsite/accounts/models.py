"""A custom user model as many sites have one: email login, a full name, no username."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class UserManager(BaseUserManager["User"]):
    """Users by email."""

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> "User":
        """A user who logs in with ``email`` and ``password``."""
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> "User":
        """A user with every permission, who may use the admin."""
        return self.create_user(email, password, is_staff=True, is_superuser=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person of the site, known by email."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def get_full_name(self) -> str:
        """The name the site shows."""
        return self.full_name or self.email

    def get_short_name(self) -> str:
        """The name the site shows."""
        return self.get_full_name()
