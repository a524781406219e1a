"""The moderation console in the Django admin: rooms, members, invites, bans and
the audit log. Every change with an effect in the call goes through the same
service as in the call (moderation/services.py): audited, and live at once."""

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from pymongo.errors import PyMongoError

from rooms import telemetry
from rooms.models import AuditLog, Ban, Invite, Membership, Role, Room
from videochat.adminaccess import NamedInlineControls

from . import callquality, services

if TYPE_CHECKING:  # the mixin's super() calls reach ModelAdmin or InlineModelAdmin
    _AdminBase = admin.options.BaseModelAdmin[Any]
else:
    _AdminBase = object


def _by(request: HttpRequest) -> User:
    """Who acts: the admin site lets only signed-in staff in."""
    assert isinstance(request.user, User)
    return request.user


def _roles_to_set(formset) -> list[tuple[Membership, str]]:
    """Role changes in a membership formset, each left to the service: the
    form's instance keeps its old role until ``member_set_role`` writes it."""
    changes = []
    for form in formset.forms:
        if form.instance.pk and "role" in form.changed_data and form not in formset.deleted_forms:
            changes.append((form.instance, form.instance.role))
            form.instance.role = form.initial["role"]
    return changes


class OwnerOnlyForSuperusers(_AdminBase):
    """Moderators (staff, not superusers) cannot make or edit owners: no escalation."""

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and not request.user.is_superuser:
            kwargs["choices"] = [c for c in Role.choices if c[0] != Role.OWNER]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if isinstance(obj, Membership) and obj.role == Role.OWNER and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)


class MembershipInline(NamedInlineControls, OwnerOnlyForSuperusers, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("display_name", "user", "role", "joined_at")
    raw_id_fields = ("user",)


class InviteInline(NamedInlineControls, admin.TabularInline):
    model = Invite
    extra = 0
    fields = ("token", "created_by", "created_at", "expires_at", "revoked_at")
    readonly_fields = ("token", "created_at")
    raw_id_fields = ("created_by",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "owner", "capacity", "guest_access", "created_at")
    list_filter = ("guest_access", "created_at", "locked", "lobby_enabled")
    exclude = ("password_hash",)  # set from the call; a hash is no use to read
    search_fields = ("name", "slug", "owner__username")
    prepopulated_fields = {"slug": ("name",)}
    raw_id_fields = ("owner",)
    inlines = [MembershipInline, InviteInline]

    def get_urls(self):
        view = self.admin_site.admin_view(self.quality_view)
        return [
            path("<path:object_id>/quality/", view, name="rooms_room_quality"),
            *super().get_urls(),
        ]

    def quality_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The room's calls, and one call's quality timeline (call.stats samples) as plots."""
        room = get_object_or_404(Room, pk=object_id)
        if not self.has_view_permission(request, room):
            raise PermissionDenied
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Call quality: {room.name}",
            "room": room,
            "opts": self.model._meta,
            "calls": [],
            "call": None,
            "pairs": [],
            "events": [],
            "unavailable": None,
            "ttl_days": settings.CALL_STATS_TTL_DAYS,
        }
        try:
            calls = telemetry.calls_for(room=room.slug)
            wanted = request.GET.get("call") or (calls[0]["call"] if calls else None)
            if wanted is not None and wanted not in {c["call"] for c in calls}:
                raise Http404("No such call in this room.")
            samples = telemetry.samples_for(room=room.slug, call=wanted) if wanted else []
        except PyMongoError as exc:
            context["unavailable"] = str(exc)[:200]
        else:
            context.update(
                calls=calls,
                call=wanted,
                pairs=callquality.pairs_of(samples),
                events=callquality.events_of(samples),
            )
        return TemplateResponse(request, "admin/rooms/room/quality.html", context)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Handing a room to someone else is for superusers only.
        extra = () if request.user.is_superuser else ("owner",)
        return (*super().get_readonly_fields(request, obj), *extra)

    def save_model(self, request: HttpRequest, obj: Room, form, change: bool) -> None:
        access = {f: getattr(obj, f) for f in ("locked", "lobby_enabled") if f in form.changed_data}
        if change and access:
            # Locking from the admin is a moderation action like in the call:
            # the service writes these fields, audits and tells the room.
            stored = Room.objects.values(*access).get(pk=obj.pk)
            for field in access:
                setattr(obj, field, stored[field])
        super().save_model(request, obj, form, change)
        if change and access:
            services.room_set_access(room_id=obj.pk, by=_by(request), **access)
            obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        roles = _roles_to_set(formset)
        super().save_formset(request, form, formset, change)
        for membership, role in roles:
            services.member_set_role(
                room_id=membership.room_id,
                by=_by(request),
                target_member_id=membership.pk,
                role=role,
            )


@admin.register(Membership)
class MembershipAdmin(OwnerOnlyForSuperusers, admin.ModelAdmin):
    list_display = ("display_name", "room", "user", "role", "joined_at")
    list_filter = ("role", "joined_at")
    search_fields = ("display_name", "user__username", "room__slug", "room__name")
    raw_id_fields = ("room", "user")
    list_select_related = ("room", "user")

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        role = obj.role
        if change and "role" in form.changed_data:
            # The service sets it.
            obj.role = Membership.objects.values_list("role", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if change and role != obj.role:
            # Same effect as in the call: audited, and the member's sockets follow now.
            services.member_set_role(
                room_id=obj.room_id, by=_by(request), target_member_id=obj.pk, role=role
            )
            obj.refresh_from_db()


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ("room", "created_by", "created_at", "expires_at", "revoked_at")
    search_fields = ("room__slug", "room__name", "created_by__username")
    raw_id_fields = ("room", "created_by")
    readonly_fields = ("token",)
    list_filter = ("created_at", "expires_at", ("revoked_at", admin.EmptyFieldListFilter))
    actions = ["revoke_invites"]

    @admin.action(description="Revoke the selected invite links", permissions=["change"])
    def revoke_invites(self, request: HttpRequest, queryset: QuerySet[Invite]) -> None:
        for invite in queryset.select_related("room"):
            services.invite_revoke_by(invite=invite, by=_by(request))
        messages.success(request, "The selected invite links no longer work.")


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "room",
        "reason",
        "guest_address",
        "banned_by",
        "created_at",
        "until",
        "active",
    )
    list_filter = (
        "created_at",
        "until",
        ("lifted_at", admin.EmptyFieldListFilter),
        ("room", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("display_name", "reason", "user__username", "room__slug", "room__name")
    raw_id_fields = ("room", "user", "membership", "banned_by")
    readonly_fields = ("banned_by", "created_at", "lifted_at")
    list_select_related = ("room", "banned_by", "membership")
    actions = ["lift_bans"]

    @admin.display(description="guests refused from")
    def guest_address(self, obj: Ban) -> str:
        """A guest's ban also refuses new guests from where that guest joined."""
        if obj.user_id is None and obj.membership and obj.membership.joined_from:
            return obj.membership.joined_from
        return ""

    @admin.display(boolean=True)
    def active(self, obj: Ban) -> bool:
        return obj.is_active()

    def save_model(self, request: HttpRequest, obj: Ban, form, change: bool) -> None:
        if not change:
            obj.banned_by = _by(request)
            if not obj.display_name and obj.membership:
                obj.display_name = obj.membership.display_name
            elif not obj.display_name and obj.user:
                obj.display_name = obj.user.get_username()
        # Saved, audited, and enforced live: the banned person's sockets close now.
        services.ban_save(ban=obj, actor=services.staff(_by(request)), created=not change)

    @admin.action(description="Lift the selected bans", permissions=["change"])
    def lift_bans(self, request: HttpRequest, queryset: QuerySet[Ban]) -> None:
        for ban in queryset.select_related("room"):
            services.ban_lift(ban=ban, by=_by(request))
        messages.success(request, "The selected bans are lifted.")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the record of what moderators did is not edited after the fact."""

    list_display = ("created_at", "room_slug", "actor_name", "action", "target_name")
    list_filter = ("action", "created_at", ("room", admin.RelatedOnlyFieldListFilter))
    search_fields = ("room_slug", "actor_name", "target_name", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("room", "actor")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
