"""Taskdeck: an operations dashboard for Celery jobs, pluggable into any Django + Celery project."""
