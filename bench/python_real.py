"""Workload 8: a real program. Builds records as dicts and lists, serializes them to
JSON and back, scans the text with regular expressions, sorts and aggregates, the
way a small data-processing script does. Run with `python3 python_real.py
scale=1 seed=1`; prints one JSON line like the C workloads (with "malloc_lib",
the library that defines the malloc the process resolved, read with dladdr
through ctypes at the end, outside the timed part)."""
import json
import random
import re
import sys
import time
import zlib

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
         "omicron pi rho sigma tau upsilon phi chi psi omega").split()
EMAIL = re.compile(r"([a-z]+)\.([a-z]+)@([a-z]+)\.example\.(org|com)")
NUMBER = re.compile(r"\b(\d{3,})\b")


def make_record(rng, i):
    name = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
    return {
        "id": i,
        "name": name,
        "email": "%s.%s@%s.example.%s" % (rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS),
                                         rng.choice(("org", "com"))),
        "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 8))],
        "scores": [rng.random() * 1000 for _ in range(rng.randint(1, 12))],
        "nested": {"level": rng.randint(0, 9), "note": "item %d of batch %d" % (i, i // 100)},
    }


def batch(rng, n, start):
    records = [make_record(rng, start + i) for i in range(n)]
    text = json.dumps(records)
    back = json.loads(text)
    domains = {}
    for m in EMAIL.finditer(text):
        domains[m.group(3)] = domains.get(m.group(3), 0) + 1
    numbers = sum(int(m.group(1)) for m in NUMBER.finditer(text))
    by_tag = {}
    for r in back:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r["id"])
    ranked = sorted(back, key=lambda r: (-max(r["scores"]), r["id"]))[:50]
    summary = "|".join("%s:%d" % (k, len(v)) for k, v in sorted(by_tag.items()))
    digest = zlib.crc32(text.encode())
    digest = zlib.crc32(summary.encode(), digest)
    digest = zlib.crc32(repr(sorted(domains.items())).encode(), digest)
    digest = zlib.crc32(str(numbers).encode(), digest)
    digest = zlib.crc32(",".join(str(r["id"]) for r in ranked).encode(), digest)
    return digest, len(text)


def malloc_library():
    """The library whose malloc the dynamic linker binds: the first loaded object, in
    load order (the program, then LD_PRELOAD, then the program's libraries), that
    defines malloc itself. (dlsym(RTLD_DEFAULT) cannot say: a non-PIE python has a
    canonical PLT entry for malloc, so the lookup answers with the executable.)"""
    import ctypes

    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    class PhdrInfo(ctypes.Structure):
        _fields_ = [("dlpi_addr", ctypes.c_void_p), ("dlpi_name", ctypes.c_char_p)]

    libc = ctypes.CDLL(None)
    libc.dlsym.restype = ctypes.c_void_p
    libc.dlsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    names = []
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(PhdrInfo), ctypes.c_size_t, ctypes.c_void_p)

    def visit(info, size, data):
        names.append(info.contents.dlpi_name or b"")
        return 0

    libc.dl_iterate_phdr(callback_type(visit), None)
    rtld_lazy, rtld_noload = 1, 4
    for name in names[1:]:  # names[0] is the program itself
        if not name.startswith(b"/") and b".so" not in name:
            continue
        try:
            handle = ctypes.CDLL(name.decode(), mode=rtld_lazy | rtld_noload)._handle
        except OSError:
            continue
        address = libc.dlsym(handle, b"malloc")
        info = DlInfo()
        if address and libc.dladdr(address, ctypes.byref(info)) != 0 and info.dli_fname == name:
            return name.decode(errors="replace")
    return "?"


def main():
    params = {"scale": 1.0, "seed": 1.0, "batches": 15, "records": 1000}
    for arg in sys.argv[1:]:
        key, sep, value = arg.partition("=")
        if not sep or key not in params:
            print("bench: unknown argument %r" % arg, file=sys.stderr)
            sys.exit(2)
        params[key] = float(value)
    batches = max(1, round(params["batches"] * params["scale"]))
    records = int(params["records"])
    rng = random.Random(int(params["seed"]))
    t0 = time.monotonic_ns()
    checksum, chars = 0, 0
    for b in range(batches):
        digest, n = batch(rng, records, b * records)
        checksum = (checksum * 1000003 + digest) & 0xFFFFFFFFFFFFFFFF
        chars += n
    elapsed = time.monotonic_ns() - t0
    print(json.dumps({"workload": "python_real", "elapsed_ns": elapsed, "checksum": checksum,
                      "malloc_lib": malloc_library(), "batches": batches, "records_per_batch": records,
                      "json_chars": chars}, separators=(",", ":")))


if __name__ == "__main__":
    main()
