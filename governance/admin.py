from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from governance.models import Membership, Organization, SecurityEvent, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Alfred", {"fields": ("platform_role", "preferred_language", "oidc_issuer", "oidc_subject")}),
    )
    list_display = ("username", "first_name", "last_name", "email", "platform_role", "is_active")
    list_filter = ("platform_role", "is_active", "is_staff")


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "reason", "service", "user", "method", "path", "remote_addr")
    list_filter = ("kind", "reason", "service")
    list_select_related = ("user",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a record of what happened is never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nor deleted, not even by a superuser: retention will be a command of its own
