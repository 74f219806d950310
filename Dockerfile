# Kommandant's image: one image for every process of the distributed stack (docker-compose.yml runs it
# as the web front door, the agent workers and the scheduler with different commands).
#   docker build -t kommandant .
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 -t kommandant:gpu .
FROM python:3.11-slim

# PyTorch from its CPU-only index, as in the Makefile: a plain `pip install torch` on Linux pulls several
# GB of CUDA packages. (The default 'local' embedding backend runs ONNX Runtime; torch is a declared
# dependency for the 'sentence-transformers' backend, so it is installed, CPU-only.)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tini as PID 1: forwards SIGTERM to kommandant (workers drain their calls on it) and reaps the bot
# executor's orphaned grandchildren. espeak-ng: the fallback voice for spoken replies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini espeak-ng \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin kommandant

WORKDIR /app
# Dependencies first (the layer is reused while only the code changes).
COPY pyproject.toml README.md ./
RUN pip install --extra-index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"
COPY . .
# Editable: the web server reads chainlit.md, .chainlit/ and public/ beside the code in /app.
RUN pip install --extra-index-url "$TORCH_INDEX" -e . \
    && mkdir -p /app/.files \
    && chown -R kommandant:kommandant /app/.files /app/.chainlit

USER kommandant
ENV KOMMANDANT_DATA_DIR=/home/kommandant/data \
    KOMMANDANT_HOST=0.0.0.0 \
    KOMMANDANT_PORT=8000
RUN mkdir -p /home/kommandant/data
VOLUME ["/home/kommandant/data"]
EXPOSE 8000

# The web front door's /healthz (no curl in the image). Worker containers override it in compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KOMMANDANT_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["tini", "--", "kommandant"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]
