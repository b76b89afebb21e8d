"""The README's pictures: builds a small demo workspace with the package's defaults (BBC News, MiniLM,
UMAP; a VQ model; a short SAE run on SmolLM2 with its dashboards; a small text VAE), serves it and
photographs every page in headless Chromium.

    .venv/bin/python docs/screenshots.py [--db /tmp/demo/latentviz.duckdb] [--out docs/images]

About ten minutes on 2 CPU cores; an existing --db is reused as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the launch helpers the tests use
from serving import free_port, launch  # noqa: E402

from latentviz.cli import main  # noqa: E402

PAGES = {  # url path → picture name
    "": "map",
    "codebook": "codebook",
    "data": "data",
    "vae-train": "vae-train",
    "vae-traverse": "vae-traverse",
    "vae-interpolate": "vae-interpolate",
    "sae-train": "sae-train",
    "sae-features": "sae-features",
    "sae-text?text=Shares+fell+sharply+after+the+bank+raised+interest+rates.": "sae-text",
}


def build(db: Path) -> None:
    steps = [
        ["ingest", "bbc-news", "--limit", "2000"],
        ["encode", "--dataset", "bbc-news"],
        ["project", "--dataset", "bbc-news"],
        ["train", "vq", "--dataset", "bbc-news", "--steps", "500"],
        ["train", "sae", "--dataset", "bbc-news", "--max-tokens", "20000", "--steps", "150"],
        ["features", "2"],
        ["train", "vae", "--dataset", "bbc-news", "--variant", "rnn", "--epochs", "3"],
    ]
    for argv in steps:
        print("latentviz", " ".join(argv), file=sys.stderr, flush=True)
        if main([*argv, "--db", str(db)]) != 0:
            raise SystemExit(f"latentviz {' '.join(argv)} failed")


def photograph(db: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "latentviz", "serve", "--db", str(db), "--port", str(port), "--no-bootstrap"]
    server = launch(command, url, 120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            for path, name in PAGES.items():
                tab = browser.new_page(viewport={"width": 1280, "height": 900})
                tab.goto(f"{url}/{path}")
                tab.wait_for_selector("h1", timeout=120_000)
                tab.wait_for_load_state("networkidle")
                tab.wait_for_timeout(8_000)  # the map, the charts and a text run through the LM draw after the page
                tab.screenshot(path=str(out / f"{name}.png"))
                tab.close()
                print(f"{name}.png", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path(tempfile.mkdtemp()) / "latentviz.duckdb")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images")
    args = parser.parse_args()
    if not args.db.exists():
        build(args.db)
    photograph(args.db, args.out)
