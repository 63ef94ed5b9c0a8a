"""The dashboard's bundled npm files, kept in the tree (dashboard/vendor/) so that `cargo build`
needs no npm: `dashboard/build.rs` embeds them and checks that vendored.json records the very
packages package-lock.json pins.

    python3 dashboard/vendor/refresh.py           # after changing package.json / package-lock.json
    python3 dashboard/vendor/refresh.py --check   # fails unless `npm ci` gives the kept bytes

It runs `npm ci` from the lockfile in a temporary folder (npm checks each package's integrity),
then copies the files vendored.json lists (URL path -> file under node_modules/) and records the
lockfile's packages; `--check` compares instead of writing. Only npm's registry is reached.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent
DASHBOARD = VENDOR.parent
RECORD = VENDOR / "vendored.json"


def locked_packages() -> dict:
    lock = json.loads((DASHBOARD / "package-lock.json").read_text())
    return {path: {"version": p["version"], "integrity": p["integrity"]}
            for path, p in sorted(lock["packages"].items()) if path}


def installed() -> Path:
    """node_modules/ as `npm ci` makes it from the lockfile, in a temporary folder."""
    work = Path(tempfile.mkdtemp(prefix="gati-dashboard-npm-"))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(DASHBOARD / name, work / name)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", "--ignore-scripts"],
                   cwd=work, check=True)
    return work / "node_modules"


def problems(node_modules: Path) -> list:
    record = json.loads(RECORD.read_text())
    found = []
    if record["packages"] != locked_packages():
        found.append("vendored.json records other packages than package-lock.json pins")
    kept = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - {
        "refresh.py", "vendored.json", "README.md"}
    listed = set(record["files"].values())
    if kept != listed:
        found.append(f"dashboard/vendor/ holds {sorted(kept)}, vendored.json lists {sorted(listed)}")
    for file in sorted(listed):
        if not (node_modules / file).is_file():
            found.append(f"npm ci gives no {file}")
        elif (VENDOR / file).read_bytes() != (node_modules / file).read_bytes():
            found.append(f"dashboard/vendor/{file} differs from what npm ci gives")
    return found


def refresh(node_modules: Path):
    record = json.loads(RECORD.read_text())
    for file in record["files"].values():
        (VENDOR / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / file, VENDOR / file)
    record["packages"] = locked_packages()
    RECORD.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    modules = installed()
    try:
        if "--check" in sys.argv:
            found = problems(modules)
            for p in found:
                print(p, file=sys.stderr)
            if found:
                sys.exit("run `python3 dashboard/vendor/refresh.py` and commit dashboard/vendor/")
        else:
            refresh(modules)
            print(f"dashboard/vendor/ refreshed from package-lock.json")
    finally:
        shutil.rmtree(modules.parent, ignore_errors=True)
