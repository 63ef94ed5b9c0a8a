"""The Python package's builds and checks in one process (run by xtask/src/python.rs with the
project's pinned tools; `python -c` cannot import this file, so it is passed as a string).

  build SDK OUT EPOCH   sdist and wheel of SDK into OUT, with the files `python -m build
                        --no-isolation --skip-dependency-check` makes (the sdist, then the wheel
                        from the unpacked sdist; the backend pyproject.toml names, the pinned
                        setuptools of the tools' venv, its PEP 517 hooks called in this
                        process), the sdist made reproducible, then `twine check --strict`;
                        prints one JSON object: the files and what the wheel pins.
  pins PATH             what a wheel (or an installed `gati` directory) pins, as JSON.

One process instead of six: `python -m build` starts a Python for each backend hook and
`twine check` and the pin reader one each, a second of a release spent importing. (The bytes
are the same: both files' sha256s were compared with `build`'s.)
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


def backend_of(sdk):
    """The PEP 517 backend `sdk/pyproject.toml` names (`module` or `module:object`)."""
    import importlib

    try:
        import tomllib
    except ModuleNotFoundError:  # Python before 3.11: build's own dependency
        import tomli as tomllib

    with open(os.path.join(sdk, "pyproject.toml"), "rb") as f:
        system = tomllib.load(f)["build-system"]
    sys.path[:0] = [os.path.join(sdk, p) for p in system.get("backend-path", [])]
    module, _, obj = system["build-backend"].partition(":")
    backend = importlib.import_module(module)
    for name in filter(None, obj.split(".")):
        backend = getattr(backend, name)
    return backend


def call_hook(hook, source, out):
    """One hook, in `source`, as a frontend calls it there; its chatter is kept, and shown only
    if it fails."""
    import logging

    # setuptools configures the root logger onto the streams of the moment (the chatter's):
    # it is given back as it was, for twine's check to report through.
    here, chatter = os.getcwd(), io.StringIO()
    handlers, level = logging.root.handlers[:], logging.root.level
    os.chdir(source)
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return os.path.join(out, hook(out))
    except BaseException:
        sys.stderr.write(chatter.getvalue())
        raise
    finally:
        os.chdir(here)
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)


def build(sdk, out, epoch):
    # Imports from the work directory would change as the hooks change it: none are wanted.
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    sdk, out = os.path.abspath(sdk), os.path.abspath(out)
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    os.makedirs(out, exist_ok=True)
    backend = backend_of(sdk)
    sdist = call_hook(backend.build_sdist, sdk, out)
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(sdist) as archive:
            # Our own archive, but extracted as any other: no links out, no device files.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(unpacked, **safe)
        top = os.path.join(unpacked, os.path.basename(sdist)[: -len(".tar.gz")])
        wheel = call_hook(backend.build_wheel, top, out)
    reproducible_sdist(sdist, epoch)
    # Imported only now, in this thread: imported in another while the backend's hooks import,
    # the two deadlocked once in a while.
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
        # A failing hook has shown what the backend printed (call_hook).
        sys.exit(f"{command}: {type(e).__name__}: {e}")


main()
