"""Admin for rooms (with a broadcast action), stored messages and their attached files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from chat import conf, files, services
from chat.forms import BroadcastForm
from chat.models import STORED_TYPES, Attachment, Message, MsgType, Room, RoomKind, RoomMember
from chat.permissions import Account

# django-stubs makes ModelAdmin generic in its model, but Django's class takes no
# subscript at runtime (that needs django-stubs-ext's monkeypatch, a dev-only package).
if TYPE_CHECKING:
    RoomModelAdmin = admin.ModelAdmin[Room]
    MessageModelAdmin = admin.ModelAdmin[Message]
    MemberInline = admin.TabularInline[RoomMember, Room]
    AttachmentModelAdmin = admin.ModelAdmin[Attachment]
else:
    RoomModelAdmin = MessageModelAdmin = AttachmentModelAdmin = admin.ModelAdmin
    MemberInline = admin.TabularInline


@admin.action(description=_("Post a warning, alert or note to the selected rooms"))
def broadcast(
    modeladmin: RoomAdmin, request: HttpRequest, queryset: QuerySet[Room]
) -> TemplateResponse | None:
    """Ask for the text and level, then post it to every selected room."""
    form = BroadcastForm(
        request.POST if "apply" in request.POST else None,
        max_length=conf.CHAT_MESSAGE_MAX_LENGTH,
    )
    if form.is_valid():
        count = services.rooms_broadcast(
            rooms=queryset,
            user=cast(Account, request.user),  # the admin site lets only staff accounts in
            text=form.cleaned_data["text"],
            msg_type=form.cleaned_data["msg_type"],
        )
        posted = ngettext("Posted to %(count)d room.", "Posted to %(count)d rooms.", count)
        modeladmin.message_user(request, posted % {"count": count}, messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Post to rooms"),
        "form": form,
        "rooms": queryset,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/chat/room/broadcast.html", context)


class RoomMemberInline(MemberInline):
    """A direct conversation's members, read only: a conversation is one set of people."""

    model = RoomMember
    fields = ("user", "created")
    readonly_fields = ("user", "created")
    extra = 0
    can_delete = False
    verbose_name = _("member")
    verbose_name_plural = _("members")

    def has_add_permission(self, request: HttpRequest, obj: Room | None = None) -> bool:
        """Members come with the conversation (chat.rooms.direct_open), never added here."""
        return False


@admin.register(Room)
class RoomAdmin(RoomModelAdmin):
    """Rooms and direct conversations: list, search, add, edit, delete, and post to them.

    The admin is the one place staff see direct conversations they are not in
    (to moderate); a conversation's kind, members and title are read only, and
    ``staff_only`` means nothing there, so it is not shown.
    """

    list_display = ("title", "kind", "staff_only", "last_seq", "created", "created_by")
    list_filter = ("kind", "staff_only")
    search_fields = ("title",)
    # Direct conversations are opened by their members (chat.rooms), never made here.
    readonly_fields = ("kind", "last_seq", "created", "created_by")
    actions = [broadcast]

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> Any:
        """A conversation's title is its members' names: read only too."""
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "title") if obj is not None and obj.kind == RoomKind.DIRECT else fields

    def get_exclude(self, request: HttpRequest, obj: Room | None = None) -> Any:
        """``staff_only`` does not apply to a direct conversation: not shown for one."""
        if obj is not None and obj.kind == RoomKind.DIRECT:
            return ("staff_only",)
        return super().get_exclude(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Room | None) -> Any:
        """The members of a direct conversation (a room has none)."""
        return [RoomMemberInline] if obj is not None and obj.kind == RoomKind.DIRECT else []

    def save_model(
        self, request: HttpRequest, obj: Room, form: forms.ModelForm[Room], change: bool
    ) -> None:
        """Save through the service, so members re-check access (e.g. made staff-only)."""
        services.room_save(room=obj)

    def delete_model(self, request: HttpRequest, obj: Room) -> None:
        """Delete through the service, so members are taken out of the room."""
        services.room_delete(room=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        """Delete each selected room through the service."""
        for room in queryset:
            services.room_delete(room=room)


class StoredTypeFilter(admin.SimpleListFilter):
    """Filter messages by type, offering only the stored ones: enter/leave notices never are."""

    title = _("type")
    parameter_name = "msg_type__exact"  # the URL Django's own field filter used

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Message]
    ) -> list[tuple[str, str]]:
        """message, warning, alert, muted."""
        return [(str(t.value), str(t.label)) for t in MsgType if t in STORED_TYPES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        """The messages of the chosen type (all when none is chosen)."""
        value = self.value()
        return queryset.filter(msg_type=int(value)) if value and value.isdigit() else queryset


@admin.register(Message)
class MessageAdmin(MessageModelAdmin):
    """Stored messages: read, filter, search, delete (which tells connected clients)."""

    list_display = ("room", "seq", "username", "msg_type", "short_text", "created", "deleted")
    list_filter = (
        "room",
        StoredTypeFilter,
        "deleted",
        ("author", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("text", "username")
    list_select_related = ("room",)
    date_hierarchy = "created"
    readonly_fields = (
        "room",
        "author",
        "username",
        "msg_type",
        "text",
        "seq",
        "created",
        "deleted",
    )

    @admin.display(description=_("text"))
    def short_text(self, obj: Message) -> str:
        """The first 80 characters of the text."""
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Messages are posted in rooms (or with the broadcast action), not added here."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        """Stored messages are not edited."""
        return False

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        """Delete through the service: a tombstone, and every member sees it go, live or later."""
        self._delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        """Delete each selected message through the service."""
        for message in queryset:
            self._delete(request, message)

    @staticmethod
    def _delete(request: HttpRequest, message: Message) -> None:
        if message.deleted:
            return  # already a tombstone
        services.message_delete(
            user=cast(Account, request.user),
            room_id=message.room_id,
            seq=message.seq,
            moderator=True,
        )


@admin.register(Attachment)
class AttachmentAdmin(AttachmentModelAdmin):
    """Uploaded files: read, search by name, delete (the stored bytes go too)."""

    list_display = ("name", "content_type", "human_size", "uploader", "room", "posted", "created")
    list_filter = ("content_type", ("posted", admin.EmptyFieldListFilter))
    search_fields = ("name",)
    list_select_related = ("uploader", "message__room")
    date_hierarchy = "created"
    readonly_fields = (
        "key",
        "name",
        "content_type",
        "human_size",
        "width",
        "height",
        "uploader",
        "message",
        "storage_name",
        "thumb_name",
        "created",
        "posted",
    )
    exclude = ("size",)

    @admin.display(description=_("size"), ordering="size")
    def human_size(self, obj: Attachment) -> str:
        """The size as people read it (12.1 KB)."""
        return str(filesizeformat(obj.size))

    @admin.display(description=_("room"))
    def room(self, obj: Attachment) -> Room | None:
        """The room it was posted in; none before it is posted."""
        return obj.message.room if obj.message is not None else None

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Files are uploaded by people, not added here."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Attachment | None = None) -> bool:
        """Uploaded files are not edited."""
        return False

    def delete_model(self, request: HttpRequest, obj: Attachment) -> None:
        """Delete through chat.files: its stored files go, and its post no longer lists it."""
        files.attachments_remove([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Attachment]) -> None:
        """Delete the selected files through chat.files."""
        files.attachments_remove(queryset)
