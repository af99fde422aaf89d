"""Runs in the python3 images as `python3 /probe.py`; prints one JSON object on stdout.

Imports every module of the standard library, as Google distroless's own python3 test does
(it walks sys.path with pkgutil.walk_packages): every module and package under the
stdlib directory and lib-dynload, recursively, plus the built-in modules, plus the names
listed one per line in /stdlib-modules.txt when it exists (the family test writes there
every module Debian's packages ship, so that a module the image lacks fails here rather
than go unnoticed). Then exercises ssl, the compressors, sqlite3, ctypes, readline,
curses, dbm.ndbm and subprocess.
"""

import contextlib
import importlib
import io
import json
import os
import pkgutil
import sys
import sysconfig

# Modules not imported, each with the reason. Nothing else is skipped.
WINDOWS = {
    # Windows only: they import _winapi, _overlapped, msvcrt or the mbcs codec.
    "asyncio.windows_events",
    "asyncio.windows_utils",
    "encodings.mbcs",
    "encodings.oem",
    "multiprocessing.popen_spawn_win32",
    "_pyrepl.windows_console",
}


def skip_reason(name):
    parts = name.split(".")
    if parts[0] == "test":
        return (
            "CPython's own test suite (Debian's libpython3.13-testsuite; debless drops the "
            "few modules of it that libpython3.13-stdlib carries)"
        )
    if (
        parts[0].startswith("_test")
        or parts[0] in ("_ctypes_test", "_xxtestfuzz")
        or parts[0].startswith("xx")
    ):
        return "an extension module of CPython's test suite (or its xx* examples)"
    if parts[-1] == "__main__":
        return (
            "runs its package's command line on import (unittest's discovers tests "
            "from the working directory, venv's and zipfile's parse sys.argv and exit); "
            "its package is imported"
        )
    if name in WINDOWS:
        return "Windows only"
    if name == "_ios_support":
        return "Apple only: looks for libobjc with ctypes and raises ImportError on Linux"
    if name in ("turtle", "turtledemo") or parts[0] == "turtledemo":
        return (
            "Tk graphics: imports tkinter, which Debian ships in python3-tk, not a "
            "dependency of python3 (Google's test skips it too)"
        )
    if name == "_distutils_system_mod":
        return (
            "Debian's hook into setuptools' distutils: imports distutils, which Python 3.12 "
            "removed and only python3-setuptools provides, not a dependency of python3 "
            "(Google's test skips it too)"
        )
    if name == "_pyrepl._minimal_curses" and os.environ.get("DEBLESS_PROBE_QEMU"):
        return (
            "finds ncurses with ctypes.util.find_library, which runs ldconfig: a child "
            "process of the emulated architecture, which qemu-user cannot start without "
            "binfmt_misc (imported natively on amd64)"
        )
    if name == "dbm.gnu":
        return (
            "its C half _gdbm is Debian's python3-gdbm, not a dependency of python3 "
            "(Google's test skips it too)"
        )
    return None


def walk(path, prefix, out):
    """Every module under `path` (a directory on sys.path or a package's), recursively,
    without importing anything."""
    for m in pkgutil.iter_modules([path], prefix):
        out.add(m.name)
        if m.ispkg:
            walk(os.path.join(path, m.name.rsplit(".", 1)[-1]), m.name + ".", out)


report = {"version": sys.version, "uid": os.getuid(), "cwd": os.getcwd()}

stdlib = sysconfig.get_path("stdlib")
names = set(sys.builtin_module_names)
walk(stdlib, "", names)
walk(os.path.join(stdlib, "lib-dynload"), "", names)
listed = 0
if os.path.exists("/stdlib-modules.txt"):
    with open("/stdlib-modules.txt") as f:
        debian = {line.strip() for line in f if line.strip()}
    listed = len(debian)
    names |= debian

imported, failed, skipped = [], {}, {}
for name in sorted(names):
    why = skip_reason(name)
    if why:
        skipped[name] = why
        continue
    try:
        # `this`, `__hello__`... print on import; keep stdout for the JSON report.
        with contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(name)
        imported.append(name)
    except BaseException as e:  # SystemExit too: nothing may exit on import
        failed[name] = f"{type(e).__name__}: {e}"
report["imported"] = imported
report["import_failures"] = failed
report["skipped"] = skipped
report["listed"] = listed

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


def check(key, f):
    try:
        report[key] = f()
    except BaseException as e:
        report[key] = f"{type(e).__name__}: {e}"


def readline_history():
    import readline

    readline.add_history("distroless")
    return readline.get_history_item(readline.get_current_history_length()) == "distroless"


def curses_terminfo():
    # What `docker run -it` gives: a terminal named by TERM, described by terminfo.
    import curses

    fd = os.open("/dev/null", os.O_WRONLY)
    curses.setupterm("xterm-256color", fd)
    return curses.tigetnum("colors")


def ndbm_round_trip():
    import dbm, dbm.ndbm, tempfile

    path = os.path.join(tempfile.mkdtemp(), "db")
    with dbm.ndbm.open(path, "c") as d:
        d[b"key"] = b"value"
    with dbm.open(path, "r") as d:
        return dbm.whichdb(path) == "dbm.ndbm" and d[b"key"] == b"value"


check("readline", readline_history)
check("curses_colors", curses_terminfo)
check("ndbm", ndbm_round_trip)

import subprocess

try:
    subprocess.run("true", shell=True)
    report["shell"] = "ran"
except OSError as e:
    report["shell"] = f"{type(e).__name__}: {e}"

import locale

report["preferred_encoding"] = locale.getpreferredencoding()
report["lc_ctype"] = locale.setlocale(locale.LC_CTYPE)

report["home_writable"] = os.access(os.path.expanduser("~"), os.W_OK)
report["home"] = os.path.expanduser("~")
print(json.dumps(report))
