"""Cron schedules: parse and check five-field expressions, describe them in words and list their
next fire times exactly as django-celery-beat's DatabaseScheduler will run them."""
