from django.urls import path

from governance import compliance_views

app_name = "compliance"

urlpatterns = [
    path("", compliance_views.trail, name="trail"),
    path("purpose/", compliance_views.purpose, name="purpose"),
    path("exports/", compliance_views.exports, name="exports"),
    path("exports/new/", compliance_views.export_request, name="export-request"),
    path("exports/<int:export_id>/download/", compliance_views.export_download, name="export-download"),
]
