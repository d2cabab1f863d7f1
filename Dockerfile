# Mirrorline HTTP API: docker build -t mirrorline . && docker run -p 8000:8000 -v ml-data:/data mirrorline
# The base pinned to one Python release and Debian release (bump both deliberately; add
# @sha256:<digest> from `docker buildx imagetools inspect` where builds must be bit-exact).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MIRRORLINE_HOST=0.0.0.0 \
    MIRRORLINE_PORT=8000 \
    MIRRORLINE_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Dependencies in their own layer, exactly as locked: every version and every file's hash
# (requirements.lock, made from pyproject.toml by scripts/lock). Rebuilt only when the lock
# changes. (PyAV wheels bundle FFmpeg; numpy/scipy wheels need no compiler.)
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock

# The code, then the package itself (no dependency resolution again).
COPY pyproject.toml README.m[d] ./
COPY dsp ./dsp
COPY models ./models
COPY service ./service
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin mirrorline \
    && mkdir -p /data \
    && chown 10001 /data

USER 10001
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MIRRORLINE_PORT', '8000') + '/healthz', timeout=4)"]

CMD ["mirrorline", "serve", "--host", "0.0.0.0"]
