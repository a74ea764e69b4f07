from django.urls import path

from governance import compliance_views

app_name = "compliance"

urlpatterns = [
    path("", compliance_views.trail, name="trail"),
    path("purpose/", compliance_views.purpose, name="purpose"),
]
