"""Taskdeck's pages; the host project includes these under a prefix of its choice."""

from django.urls import path

from .views import overview

app_name = "tasks_app"

urlpatterns = [
    path("", overview.overview, name="overview"),
]
