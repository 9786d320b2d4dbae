from django.contrib import admin

from accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """The site's users in the admin."""

    list_display = ("email", "full_name", "is_staff", "is_active")
    search_fields = ("email", "full_name")
