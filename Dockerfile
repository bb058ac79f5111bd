# syntax=docker/dockerfile:1
# One image for every Closed Loop service; the command names the service:
#   docker build -t closed-loop .
#   docker run closed-loop referral-api serve     (or directory-api, notifier, auth, web)
#   docker run closed-loop notifier migrate       (what the deployments run once per rollout)
# The build stage installs the locked dependencies (uv.lock) and the workspace packages into
# /app/.venv; the final stage gets only that environment: no uv, no compiler, no sources.
# Both stages must use the same base image (the environment links to its Python): change the
# tag in both places, or pin both to a digest (python:3.11-slim-trixie@sha256:...).

FROM python:3.11-slim-trixie AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Dependencies first (only the lock and the project files): this layer is rebuilt only when
# they change, not on every source edit.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/referral-api/pyproject.toml services/referral-api/
COPY services/directory-api/pyproject.toml services/directory-api/
COPY services/notifier/pyproject.toml services/notifier/
COPY services/auth/pyproject.toml services/auth/
COPY services/web/pyproject.toml services/web/
RUN uv sync --frozen --no-dev --no-install-workspace
# Then the workspace itself, installed as packages (not editable links back to /src).
COPY shared/ shared/
COPY services/ services/
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim-trixie
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REFERRAL_API_HOST=0.0.0.0 \
    DIRECTORY_API_HOST=0.0.0.0 \
    NOTIFIER_HOST=0.0.0.0 \
    AUTH_HOST=0.0.0.0 \
    WEB_HOST=0.0.0.0
RUN groupadd --system --gid 10001 closedloop \
    && useradd --system --uid 10001 --gid closedloop --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin closedloop
COPY --from=build /app/.venv /app/.venv
COPY deploy/docker/healthcheck.py /app/healthcheck.py
# /keys: where Compose's provisioning writes the apps' client keys (a named volume takes the
# owner of the image's folder, so the non-root user can write there)
RUN mkdir /keys && chown 10001:10001 /keys && chmod 0700 /keys
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081 8082 8083 8084
# The port of whichever service this container runs (see healthcheck.py); curl is not in the
# slim image, Python's urllib is.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]
CMD ["referral-api", "serve"]
