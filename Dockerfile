# Taskdeck: one image for every process (web, Celery worker, celery beat, migrations).
# The default command is the web server; docker-compose.yml overrides it for the others.
FROM python:3.11-slim

# PYTHONPATH: import dashboard/ and tasks_app/ from /app (not from site-packages) whatever the
# entry point (gunicorn, celery, manage.py): settings derive BASE_DIR from their own path and
# find templates/ and static/ next to them. TASKDECK_DATA_DIR holds the collected static files
# and media (and SQLite, unused once DATABASE_URL is set); only it is writable by the app user.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    TASKDECK_DATA_DIR=/app/.data

WORKDIR /app

RUN groupadd --system --gid 10001 taskdeck \
    && useradd --system --uid 10001 --gid taskdeck --create-home --home-dir /home/taskdeck \
        --shell /usr/sbin/nologin taskdeck

# Dependencies first, read from pyproject.toml alone, so this layer is rebuilt only when
# pyproject.toml changes (not on every code change). No dev extras.
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(project['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (its dependencies are installed above). The code stays owned by root:
# the app user can read it but not change it.
COPY dashboard/ dashboard/
COPY tasks_app/ tasks_app/
COPY templates/ templates/
COPY static/ static/
COPY manage.py ./
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && python -m compileall -q dashboard tasks_app \
    && mkdir -p "$TASKDECK_DATA_DIR" \
    && chown taskdeck:taskdeck "$TASKDECK_DATA_DIR"

USER taskdeck

# Hashed, compressed static files for WhiteNoise (production storage needs DEBUG off). The
# SECRET_KEY here is a throwaway that exists only for this command: it is not kept in the
# image's environment, and every container must be given its own SECRET_KEY.
RUN DEBUG=false SECRET_KEY=build-only-throwaway-not-used-at-run-time \
    python manage.py collectstatic --noinput

EXPOSE 8000

# `sh -c` so ${PORT} and ${WEB_CONCURRENCY} expand; `exec` so gunicorn is PID 1 and gets
# SIGTERM directly (graceful shutdown). /dev/shm keeps worker heartbeats off the overlay disk.
CMD ["sh", "-c", "exec gunicorn dashboard.wsgi --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-3} --access-logfile - --worker-tmp-dir /dev/shm"]
