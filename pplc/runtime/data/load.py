"""Reading data files: .npz archives and Stan-style .json objects of named arrays, whole or some rows of each."""
from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from ...dsl.diagnostics import Diagnostic, PPLError

META = "meta/"  # what `pplc data` keeps beside a model's data under this prefix (ids, titles, genres: strings)


def load(path: str) -> dict[str, np.ndarray]:
    """Read a data file (.npz, or Stan-style .json) into arrays by name; every unreadable entry is reported."""
    if not os.path.exists(path):
        raise PPLError(Diagnostic(f"no such data file: {path}"))
    if os.path.isdir(path):
        raise PPLError(Diagnostic(f"{path} is a folder, not a data file",
                                  hint="data files are .npz (numpy.savez) or .json (one object of named arrays)"))
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise PPLError(Diagnostic(f"cannot read data: {e.strerror}", filename=path)) from None
    ext = os.path.splitext(path)[1].lower()
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip archive: .npz
        return _load_npz(path)
    if head.startswith(b"\x93NUMPY"):
        raise PPLError(Diagnostic("this is a .npy file: one unnamed array, but pplc needs arrays by name",
                                  filename=path, hint="save the arrays by name: np.savez('data.npz', y=y, x=x)"))
    if ext == ".json" or head.lstrip()[:1] == b"{":
        return _load_json(path)
    what = {".csv": "from a CSV file", ".txt": "from a text file", ".npy": "from a damaged .npy file",
            ".npz": "from this .npz file: it is not a zip archive", ".pkl": "from a pickle file",
            ".pickle": "from a pickle file", ".ppl": "from a model file"}.get(
        ext, "from this file: it is neither .npz nor .json")
    raise PPLError(Diagnostic(f"cannot read data {what}", filename=path,
                              hint="data files are .npz (numpy.savez) or .json (one object of named arrays)"))


def kind_error(name: str, a: np.ndarray) -> str | None:
    """Why an array is not plain numbers, or None."""
    k = a.dtype.kind
    if k in "biuf":
        return None
    what = {"U": "strings", "S": "byte strings", "O": "Python objects", "c": "complex numbers",
            "M": "dates", "m": "time spans", "V": "records (a structured array)"}.get(k, f"values of type {a.dtype}")
    return f"`{name}` holds {what}, not numbers"


def _load_npz(path: str) -> dict[str, np.ndarray]:
    errors, out = [], {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for k in f.files:
                try:
                    a = f[k]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        errors.append(Diagnostic(
                            f"`{k}` is an array of Python objects (dtype object), which pplc does not load",
                            filename=path, hint=f"save it as numbers: np.savez(..., {k}=np.asarray({k}, dtype=float))"))
                    else:
                        errors.append(Diagnostic(f"cannot read `{k}`: {e}", filename=path))
                    continue
                why = None if k.startswith(META) and a.dtype.kind in "US" else kind_error(k, a)
                if why:
                    errors.append(Diagnostic(why, filename=path, hint="data arrays hold numbers (or bools)"))
                    continue
                out[k] = a
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
        raise PPLError(Diagnostic(f"cannot read data: the .npz file is damaged or truncated ({e})",
                                  filename=path, hint="write it again with numpy.savez")) from None
    if errors:
        raise PPLError(errors)
    return out


def _load_json(path: str) -> dict[str, np.ndarray]:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise PPLError(Diagnostic(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", filename=path,
                                  hint="a .json data file is one object of named numbers and nested lists: "
                                       '{"N": 3, "y": [1.5, 2.0, 0.5]}')) from None
    except UnicodeDecodeError:
        raise PPLError(Diagnostic("cannot read data: the file is not text (UTF-8)", filename=path)) from None
    except (OSError, RecursionError) as e:
        raise PPLError(Diagnostic(f"cannot read data: {getattr(e, 'strerror', None) or e}", filename=path)) from None
    if not isinstance(raw, dict):
        raise PPLError(Diagnostic(f"a .json data file holds one object of named values, but this one holds "
                                  f"{'a list' if isinstance(raw, list) else 'a single value'}", filename=path,
                                  hint='e.g. {"N": 3, "y": [1.5, 2.0, 0.5]}'))
    errors, out = [], {}
    for k, v in raw.items():
        try:
            a = np.asarray(v)
        except (ValueError, TypeError, OverflowError):
            errors.append(Diagnostic(f"`{k}` is a ragged nested list: its rows have different lengths",
                                     filename=path, hint="every row of an array has the same length"))
            continue
        if a.dtype.kind == "O":
            has = ("null" if _has(v, type(None)) else "an object" if _has(v, dict) else
                   "an integer too large for 64 bits" if _has(v, int) else "mixed values")
            errors.append(Diagnostic(f"`{k}` holds {has}" + ("" if "too large" in has else ", not numbers"),
                                     filename=path,
                                     hint="data values are numbers, or nested lists of numbers"))
            continue
        why = kind_error(k, a)
        if why:
            errors.append(Diagnostic(why, filename=path, hint="data values are numbers, or nested lists of numbers"))
            continue
        out[k] = a
    if errors:
        raise PPLError(errors)
    return out


def _has(v, t) -> bool:
    if isinstance(v, t):
        return True
    if isinstance(v, list):
        return any(_has(x, t) for x in v)
    return False


# ---------------------------------------------------------------------------------------------------- some rows
@dataclass(frozen=True)
class Member:
    """One array of an .npz archive, from its .npy header alone: where its values start when the archive stores
    it uncompressed (`offset` in the file, else None), and their layout."""

    name: str
    shape: tuple
    dtype: np.dtype
    fortran: bool
    offset: int | None  # of the first value in the file, when stored uncompressed (np.savez): memory-mappable
    header: int  # bytes of the .npy header inside the member


def npz_members(path: str) -> dict[str, Member] | None:
    """The arrays of an .npz file by name, from their headers (no values read); None when a header cannot be read
    this way (the caller then reads the file whole, with `load`'s messages)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z, open(path, "rb") as raw:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    return None
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read(f)
                    header = f.tell()
                offset = None
                if info.compress_type == zipfile.ZIP_STORED:  # the local header's own name and extra lengths
                    raw.seek(info.header_offset)
                    local = raw.read(30)
                    if local[:4] != b"PK\x03\x04":
                        return None
                    n, m = struct.unpack("<HH", local[26:30])
                    offset = info.header_offset + 30 + n + m + header
                name = info.filename[:-4]
                out[name] = Member(name, tuple(shape), np.dtype(dtype), bool(fortran), offset, header)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, struct.error):
        return None
    return out


def read_rows(path: str, member: Member, axis: int, start: int, stop: int) -> tuple[np.ndarray, int]:
    """Items `start:stop` along `axis` of one .npz array, and the bytes of values read from the file for them.
    Stored uncompressed: memory-mapped, so only those rows are read (all of them along an inner axis, page by
    page). Compressed along its first axis (C order): decompressed up to `stop`, only the rows kept. Otherwise the
    whole array is read, and only the rows kept."""
    shape, dtype = member.shape, member.dtype
    rows = [slice(None)] * len(shape)
    rows[axis] = slice(start, stop)
    if member.offset is not None and dtype.kind in "biuf":
        mm = np.memmap(path, dtype, "r", offset=member.offset, shape=shape, order="F" if member.fortran else "C")
        out = np.array(mm[tuple(rows)])
        del mm
        outer = axis == (len(shape) - 1 if member.fortran else 0)  # its rows lie one after another in the file
        return out, (out.nbytes if outer else int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    if axis == 0 and not member.fortran and dtype.kind in "biuf":
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        with zipfile.ZipFile(path) as z, z.open(member.name + ".npy") as f:
            f.seek(member.header + start * row)  # decompresses what comes before, keeping none of it
            buf = f.read((stop - start) * row)
        return np.frombuffer(buf, dtype).reshape((stop - start,) + shape[1:]).copy(), stop * row
    with np.load(path, allow_pickle=False) as f:
        whole = f[member.name]
    return np.array(whole[tuple(rows)]), whole.nbytes


def read_whole(path: str, name: str) -> np.ndarray:
    """One array of a data file, whole (for the output of a run whose processes each held some of its rows)."""
    if os.path.splitext(path)[1].lower() == ".json" or not zipfile.is_zipfile(path):
        return load(path)[name]
    with np.load(path, allow_pickle=False) as f:
        return f[name]
