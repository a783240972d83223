"""URLs: Django's login, the admin, Taskdeck's JSON API, /metrics and its pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tasks_app.api.app import api
from tasks_app.views.metrics import metrics

urlpatterns = [
    # Not redirect_authenticated_user: a signed-in user who is not staff must be able to sign in
    # as someone else.
    # Django's LoginView would also take PUT as a login attempt.
    path(
        "login/",
        auth_views.LoginView.as_view(http_method_names=["get", "head", "post"]),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    # Where Prometheus looks by default (metrics_path: /metrics); off unless a token is set.
    path("metrics", metrics, name="metrics"),
    path("", include("tasks_app.urls")),
]
