"""The JSON API (django-ninja); see `app.py`."""
