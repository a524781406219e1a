from django.contrib import admin

from .models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("room", "seq", "author", "short_body", "created_at", "hidden_at")
    list_filter = ("room", "hidden_at")
    search_fields = ("body", "client_id", "author__display_name")
    readonly_fields = ("room", "seq", "author", "client_id", "created_at")
    raw_id_fields = ("hidden_by",)

    @admin.display(description="body")
    def short_body(self, obj: Message) -> str:
        return obj.body[:80]
