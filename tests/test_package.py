"""The wheel, installed outside the source tree, is a working latentviz: CLI, ingest, and the app served."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from serving import free_port, launch

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_and_serves_outside_the_source_tree(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, ROOT],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("latentviz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "latentviz/models/sae.py" in names and "latentviz/fit/vq.py" in names
    assert any(n.endswith("data/data/share/latentviz/app.py") for n in names)
    assert any(n.endswith("share/latentviz/views/map.py") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)  # this pip installs into it
    # The dependencies come from this environment (a .pth line, so its own editable latentviz is not
    # picked up: .pth files in an added path are not run); latentviz itself only from the wheel.
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "-q", wheel],
        check=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()

    def latentviz(*args):
        return subprocess.run([venv / "bin" / "latentviz", *args], cwd=work, capture_output=True, text=True)

    found = subprocess.run(
        [venv / "bin" / "python", "-c", "import latentviz.cli as c; print(c.__file__); print(c.app_script())"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert found[0].startswith(str(venv)) and found[1] == str(venv / "share" / "latentviz" / "app.py")
    (work / "notes.txt").write_text("The first note.\nThe second note.\n")
    ingest = latentviz("ingest", "notes.txt", "--db", "ws.duckdb")
    assert ingest.returncode == 0 and "dataset 'notes'" in ingest.stdout, ingest.stderr
    for kind in ("--out", "--static"):  # a bundle, and a static site with the installed viewer
        exported = latentviz("export", "--db", "ws.duckdb", kind, kind.strip("-"))
        assert exported.returncode == 0, exported.stderr
    assert {"index.html", "site.js", "plotly.min.js"} <= {path.name for path in (work / "static").iterdir()}

    port = free_port()
    server = launch(  # the bundle, served read-only by the installed app
        [venv / "bin" / "latentviz", "serve", "--bundle", "out", "--port", str(port)],
        f"http://127.0.0.1:{port}",
        90,
        cwd=work,
    )
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:  # the installed app.py runs its installed pages
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/data")
            page.wait_for_selector("h1:has-text('Data')", timeout=90_000)
            page.wait_for_selector("text=notes", state="attached", timeout=30_000)  # the dataset ingested above
            assert page.get_by_text("read-only").count()
            assert page.locator("[data-testid=stException]").count() == 0
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
