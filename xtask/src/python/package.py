"""The Python package's builds and checks in one process (run by xtask/src/python.rs with the
project's pinned tools; `python -c` cannot import this file, so it is passed as a string).

  build SDK OUT EPOCH   sdist and wheel of SDK into OUT, as `python -m build --no-isolation
                        --skip-dependency-check` makes them (the same PEP 517 frontend, `build`,
                        from its API: the sdist, then the wheel from the unpacked sdist; the
                        backend is the pinned setuptools of the tools' venv), the sdist made
                        reproducible, then
                        `twine check --strict`; prints one JSON object: the files and what the
                        wheel pins.
  pins PATH             what a wheel (or an installed `gati` directory) pins, as JSON.

One process instead of four: `python -m build` starts a Python for each backend hook and
`twine check` and the pin reader one each, a second of a release spent importing.
"""

import contextlib
import gzip
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import zipfile

VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.M)
IMAGE = re.compile(r"^\s+image:\s*\$\{GATI_IMAGE_PREFIX:-([^}]+)\}(/\S+)\s*$", re.M)


def pins(read):
    """{"version": __version__ of version.py, "images": the compose file's references (with the
    default prefix)}; `read(name)` returns the text of gati/NAME."""
    version = VERSION.search(read("version.py"))
    return {
        "version": version.group(1) if version else None,
        "images": [m.group(1) + m.group(2) for m in IMAGE.finditer(read("docker-compose.yml"))],
    }


def pins_of(path):
    if os.path.isdir(path):
        return pins(lambda name: open(os.path.join(path, name), encoding="utf-8").read())
    with zipfile.ZipFile(path) as wheel:
        return pins(lambda name: wheel.read("gati/" + name).decode())


def reproducible_sdist(path, epoch):
    """setuptools writes an sdist with the build's times and the builder's user names (the wheel
    already honours SOURCE_DATE_EPOCH): the same archive again, every entry's time at most the
    commit's, no owner, sorted, and gzip's own time fixed, so any machine gets the same bytes."""
    out = io.BytesIO()
    with tarfile.open(path, "r:gz") as src, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m in sorted(src.getmembers(), key=lambda m: m.name):
            data = src.extractfile(m).read() if m.isfile() else None
            m.mtime, m.uid, m.gid, m.uname, m.gname, m.pax_headers = min(int(m.mtime), epoch), 0, 0, "", "", {}
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", filename="", mtime=epoch) as gz:
        gz.write(out.getvalue())


def build(sdk, out, epoch):
    import threading

    from build import ProjectBuilder
    from pyproject_hooks import quiet_subprocess_runner

    # twine takes a fifth of a second to import: meanwhile, the backend runs.
    twine = threading.Thread(target=__import__, args=("twine.commands.check",))
    twine.start()
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    os.makedirs(out, exist_ok=True)
    # The backend's chatter is kept, and shown only if a hook fails.
    sdist = ProjectBuilder(sdk, runner=quiet_subprocess_runner).build("sdist", out)
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(sdist) as archive:
            # Our own archive, but extracted as any other: no links out, no device files.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(unpacked, **safe)
        top = os.path.join(unpacked, os.path.basename(sdist)[: -len(".tar.gz")])
        wheel = ProjectBuilder(top, runner=quiet_subprocess_runner).build("wheel", out)
    reproducible_sdist(sdist, epoch)
    twine.join()
    from twine.commands.check import check

    report = io.StringIO()
    with contextlib.redirect_stdout(report), contextlib.redirect_stderr(report):
        failed = check([sdist, wheel], strict=True)
    if failed:
        sys.exit("twine check --strict fails:\n" + report.getvalue())
    print(json.dumps({"files": [os.path.basename(sdist), os.path.basename(wheel)], **pins_of(wheel)}))


def main():
    command, *args = sys.argv[1:]
    try:
        if command == "build":
            build(args[0], args[1], int(args[2]))
        else:
            print(json.dumps(pins_of(args[0])))
    except Exception as e:
        # A failing hook: what the backend printed says why.
        output = getattr(getattr(e, "exception", None), "output", None)
        if output:
            sys.stderr.write(output.decode(errors="replace") if isinstance(output, bytes) else output)
        sys.exit(f"{command}: {type(e).__name__}: {e}")


main()
