from django.contrib import admin

from support.models import Calendar, CalendarAccess


class CalendarAccessInline(admin.TabularInline):
    model = CalendarAccess
    fk_name = "calendar"
    extra = 0
    readonly_fields = ("user", "level", "granted_by", "updated_at")
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # access changes go through the services, where the rules are


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "owner")
    list_select_related = ("organization", "owner")
    search_fields = ["name", "owner__last_name"]
    inlines = [CalendarAccessInline]
