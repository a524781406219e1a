from django.contrib import admin

from .models import Invite, Membership, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("display_name", "user", "role", "joined_at")
    raw_id_fields = ("user",)


class InviteInline(admin.TabularInline):
    model = Invite
    extra = 0
    fields = ("token", "created_by", "created_at", "expires_at", "revoked_at")
    readonly_fields = ("token", "created_at")
    raw_id_fields = ("created_by",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "owner", "capacity", "guest_access", "created_at")
    list_filter = ("guest_access", "created_at")
    search_fields = ("name", "slug", "owner__username")
    prepopulated_fields = {"slug": ("name",)}
    raw_id_fields = ("owner",)
    inlines = [MembershipInline, InviteInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("display_name", "room", "user", "role", "joined_at")
    list_filter = ("role", "joined_at")
    search_fields = ("display_name", "user__username", "room__slug", "room__name")
    raw_id_fields = ("room", "user")
    list_select_related = ("room", "user")


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ("room", "created_by", "created_at", "expires_at", "revoked_at")
    list_filter = ("created_at", "expires_at")
    search_fields = ("room__slug", "room__name", "created_by__username")
    raw_id_fields = ("room", "created_by")
    readonly_fields = ("token",)
