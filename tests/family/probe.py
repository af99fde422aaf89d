"""Runs in the python3 images as `python3 /probe.py`; prints one JSON object on stdout."""

import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys

# Modules the image ships that cannot import in any distroless image, by design:
# - turtle, turtledemo: Tk graphics; they import tkinter, whose _tkinter lives in Debian's
#   python3-tk (not a dependency of python3), so the image rightly has no tkinter.
# - _ios_support: Apple-only; on import it looks for libobjc with ctypes.util.find_library
#   and raises ImportError when there is none, on every Linux system.
# Nothing else: tkinter, idlelib and ensurepip live in packages python3 does not depend on
# (find_spec finds nothing, so they are not tried); curses and readline import without a
# terminal.
SKIP = {"turtle", "turtledemo", "_ios_support"}

report = {"version": sys.version, "uid": os.getuid(), "cwd": os.getcwd()}

imported, failed, skipped = [], {}, []
for name in sorted(sys.stdlib_module_names):
    try:
        spec = importlib.util.find_spec(name)
    except Exception as e:  # a parent package that fails to import
        failed[name] = f"find_spec: {type(e).__name__}: {e}"
        continue
    if spec is None:
        continue
    if name in SKIP:
        skipped.append(name)
        continue
    try:
        # `this`, `__hello__`... print on import; keep stdout for the JSON report.
        with contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(name)
        imported.append(name)
    except BaseException as e:  # SystemExit too: nothing may exit on import
        failed[name] = f"{type(e).__name__}: {e}"
report["imported"] = len(imported)
report["import_failures"] = failed
report["skipped"] = skipped

import ssl

report["x509_ca"] = ssl.create_default_context().cert_store_stats()["x509_ca"]
report["openssl"] = ssl.OPENSSL_VERSION

import bz2, lzma, sqlite3, zlib

data = b"distroless " * 1000
report["zlib"] = zlib.decompress(zlib.compress(data)) == data
report["lzma"] = lzma.decompress(lzma.compress(data)) == data
report["bz2"] = bz2.decompress(bz2.compress(data)) == data
db = sqlite3.connect(":memory:")
db.execute("create table t (v text)")
db.execute("insert into t values (?)", ("round trip",))
report["sqlite3"] = db.execute("select v from t").fetchone()[0] == "round trip"
report["sqlite_version"] = sqlite3.sqlite_version

import ctypes, ctypes.util

report["find_library_c"] = ctypes.util.find_library("c")
report["libc_loads"] = ctypes.CDLL("libc.so.6").getpid() == os.getpid()

import subprocess

try:
    subprocess.run("true", shell=True)
    report["shell"] = "ran"
except OSError as e:
    report["shell"] = f"{type(e).__name__}: {e}"

report["home_writable"] = os.access(os.path.expanduser("~"), os.W_OK)
report["home"] = os.path.expanduser("~")
print(json.dumps(report))
