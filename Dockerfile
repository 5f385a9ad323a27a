# Verbatim's HTTP service over the seed corpus, every model baked in: no network at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    VERBATIM_HOST=0.0.0.0 VERBATIM_PORT=8000

WORKDIR /app
# torch's CPU build first (PyPI's default torch wheel for Linux is the multi-GB CUDA build).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY rag rag
COPY embeddings embeddings
COPY api api
COPY eval eval
COPY models models
COPY seeds seeds
# The same install as the README's `make run`: the project and its runtime requirements.
RUN pip install -e .
# The reader in ONNX Runtime, exported from the shipped weights (as `make install` does).
RUN verbatim export-onnx
# Build the index at image build time so the container starts serving at once.
RUN verbatim ingest

# It listens on every interface so that a published port reaches it, and answers only requests
# whose Host header names it (against DNS rebinding): give the names clients use, e.g.
# docker run -p 8000:8000 -e VERBATIM_ALLOWED_HOSTS='["qa.example.org"]' (docs/security.md).
ENV VERBATIM_ALLOWED_HOSTS='["localhost","127.0.0.1","::1"]'
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["verbatim", "serve"]
