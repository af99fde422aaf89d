"""Runs in python3 and the test-only restored-python3 as `python3 -c`: one JSON object of
what README's "Behaviour differences" says python3 cannot do (true, or the error)."""

import ctypes
import importlib
import json
import subprocess

report = {}
try:
    # libc-bin's programs: getent through glibc's NSS.
    r = subprocess.run(["getent", "passwd", "nonroot"], capture_output=True, text=True)
    report["getent"] = r.stdout.strip()
except OSError as e:
    report["getent"] = f"{type(e).__name__}: {e}"
# CPython's test suite and its extension modules.
for module in ["test.support", "_testcapi", "xxsubtype"]:
    try:
        importlib.import_module(module)
        report[module] = True
    except ImportError as e:
        report[module] = f"{type(e).__name__}: {e}"
# Libraries of the packages python3 takes that no standard-library module links.
for lib in ["libformw.so.6", "libmenuw.so.6", "libtic.so.6", "libhistory.so.8", "libexpatw.so.1"]:
    try:
        ctypes.CDLL(lib)
        report[lib] = True
    except OSError as e:
        report[lib] = f"{type(e).__name__}: {e}"
print(json.dumps(report))
