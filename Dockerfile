# Shifu: one image, either service alone (--services recommend | dispatch) or both.
#   docker build -t shifu .
#   docker run -p 50051:50051 -v /data/shifu:/var/lib/shifu shifu --services recommend
# Model and tier versions come from a volume (/var/lib/shifu/models, /var/lib/shifu/tiers), written by
# `python -m training` elsewhere; the live catalog and events go to /var/lib/shifu/state.

FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml Makefile README.md ./
COPY proto proto
COPY service service
COPY models models
COPY training training
COPY benchmarks benchmarks
# The Makefile's install and code generation, as on a developer's machine (pinned versions; LightFM and
# hnswlib build from their sdists here, which is why the build stage has a compiler); then the project
# itself, generated code included, installed into the venv rather than linked to /src.
RUN make PYTHON=python3.11 VENV=/opt/venv service/pb/.generated \
    && /opt/venv/bin/pip install --no-deps --no-build-isolation .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /var/lib/shifu shifu && mkdir -p /var/lib/shifu && chown shifu /var/lib/shifu
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    SHIFU_HOST=0.0.0.0 \
    SHIFU_MODEL_DIR=/var/lib/shifu/models \
    SHIFU_TIERS_DIR=/var/lib/shifu/tiers \
    SHIFU_STATE_DIR=/var/lib/shifu/state
USER 10001
WORKDIR /var/lib/shifu
EXPOSE 50051 9464
ENTRYPOINT ["python", "-m", "service"]
