"""Mesh file writers: binary STL (the default), OBJ, 3MF, PLY, GLB and ASCII STL.

Binary STL, OBJ, PLY, ASCII STL and 3MF are written with numpy directly (trimesh's writers
format each number in Python); GLB goes through trimesh. Every
writer writes a temporary file next to the target and renames it, so a reader never sees half
a file, and the same mesh always gives the same bytes (no dates, no random ids).

Units are millimetres, except GLB: glTF is defined in metres, so GLB files are scaled by 1/1000
and open at the right size in any glTF viewer.
"""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from fabflow.production.mesh import TriMesh
from fabflow.production.textfmt import format_rows

STL_HEADER = b"fabflow binary STL; units: millimetre".ljust(80, b" ")
# A binary STL whose header starts with "solid" is mistaken for ASCII STL by many readers.
assert not STL_HEADER.lower().startswith(b"solid")

_STL_RECORD = np.dtype(
    [("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attributes", "<u2")]
)  # 50 bytes, packed, as the format defines
_PLY_FACE = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])  # 13 bytes, packed
_BLOCK = 32_768  # triangles per block of the binary STL writer
_DECIMALS = 5  # 10 nm: far below any printer's resolution, and float32 holds no more
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same mesh gives the same 3MF bytes


@dataclass(frozen=True)
class FileFormat:
    """One output format: its file extension, MIME type and writer."""

    name: str
    extension: str
    content_type: str
    write: Callable[[TriMesh, BinaryIO, str], None]


def face_normals(triangles: NDArray[np.float32]) -> NDArray[np.float32]:
    """Unit normal of each (m, 3, 3) triangle; zero for a degenerate one."""
    e1 = triangles[:, 1] - triangles[:, 0]
    e2 = triangles[:, 2] - triangles[:, 0]
    normals = np.empty_like(e1)
    # Written out rather than np.cross: fewer temporaries on a million rows.
    normals[:, 0] = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
    normals[:, 1] = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
    normals[:, 2] = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
    length[length == 0] = 1.0
    normals /= length[:, None]
    return normals


def write_stl_binary(mesh: TriMesh, out: BinaryIO, name: str) -> None:
    """Binary STL: 80-byte header, triangle count, then 50 bytes per triangle."""
    records = np.empty(len(mesh.faces), dtype=_STL_RECORD)
    records["attributes"] = 0
    # In blocks that fit in cache: each block's corners, edges and normals stay hot.
    for start in range(0, len(mesh.faces), _BLOCK):
        block = slice(start, start + _BLOCK)
        corners = np.take(mesh.vertices, mesh.faces[block], axis=0)
        records["corners"][block] = corners
        records["normal"][block] = face_normals(corners)
    out.write(STL_HEADER)
    out.write(np.uint32(len(mesh.faces)).astype("<u4").tobytes())
    out.write(records.data)  # no copy of the records


def write_obj(mesh: TriMesh, out: BinaryIO, name: str) -> None:
    """Wavefront OBJ: one object, shared vertices, 1-based faces."""
    out.write(f"# fabflow; units: millimetre\no {_ascii_name(name)}\n".encode())
    out.write(format_rows(mesh.vertices, [b"v ", b" ", b" ", b"\n"], _DECIMALS))
    out.write(format_rows(mesh.faces + 1, [b"f ", b" ", b" ", b"\n"], 0))


def write_stl_ascii(mesh: TriMesh, out: BinaryIO, name: str) -> None:
    """ASCII STL, for tools that want to read the file as text."""
    corners = mesh.triangles
    columns = np.concatenate([face_normals(corners), corners.reshape(-1, 9)], axis=1)
    pieces = [b" facet normal ", b" ", b" ", b"\n  outer loop\n   vertex ", b" ", b" "]
    pieces += [b"\n   vertex ", b" ", b" ", b"\n   vertex ", b" ", b" "]
    pieces += [b"\n  endloop\n endfacet\n"]
    label = _ascii_name(name)
    out.write(f"solid {label}\n".encode())
    out.write(format_rows(columns, pieces, _DECIMALS))
    out.write(f"endsolid {label}\n".encode())


def write_ply(mesh: TriMesh, out: BinaryIO, name: str) -> None:
    """Binary little-endian PLY with float vertices and triangle faces."""
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment fabflow; units: millimetre\n"
        f"element vertex {len(mesh.vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {len(mesh.faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    faces = np.empty(len(mesh.faces), dtype=_PLY_FACE)
    faces["count"] = 3
    faces["indices"] = mesh.faces
    out.write(header.encode("ascii"))
    out.write(np.ascontiguousarray(mesh.vertices, dtype="<f4").tobytes())
    out.write(faces.data)


def write_3mf(mesh: TriMesh, out: BinaryIO, name: str) -> None:
    """3MF (3D Manufacturing Format): a zip holding an XML model in millimetres."""
    model = io.BytesIO()
    model.write(_3MF_MODEL_HEAD)
    model.write(format_rows(mesh.vertices, [b'<vertex x="', b'" y="', b'" z="', b'"/>'], 5))
    model.write(b"</vertices><triangles>")
    model.write(format_rows(mesh.faces, [b'<triangle v1="', b'" v2="', b'" v3="', b'"/>'], 0))
    model.write(_3MF_MODEL_TAIL)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for member, data in (
            ("[Content_Types].xml", _3MF_CONTENT_TYPES),
            ("_rels/.rels", _3MF_RELS),
            ("3D/3dmodel.model", model.getvalue()),
        ):
            info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def write_glb(mesh: TriMesh, out: BinaryIO, name: str) -> None:
    """Binary glTF, in metres as glTF defines."""
    import trimesh  # imported here: only GLB needs it, and it is slow to import

    scene_mesh = trimesh.Trimesh(
        vertices=mesh.vertices.astype(np.float64) / 1000.0, faces=mesh.faces, process=False
    )
    data = scene_mesh.export(file_type="glb")
    if not isinstance(data, bytes):
        raise TypeError(f"trimesh returned {type(data).__name__} for GLB, not bytes")
    out.write(data)


FORMATS: dict[str, FileFormat] = {
    f.name: f
    for f in (
        FileFormat("stl", "stl", "model/stl", write_stl_binary),
        FileFormat("obj", "obj", "model/obj", write_obj),
        FileFormat("3mf", "3mf", "model/3mf", write_3mf),
        FileFormat("ply", "ply", "application/x-ply", write_ply),
        FileFormat("glb", "glb", "model/gltf-binary", write_glb),
        FileFormat("stl-ascii", "stl", "model/stl", write_stl_ascii),
    )
}


def write(mesh: TriMesh, path: Path, file_format: str, name: str = "part") -> None:
    """Write ``mesh`` to ``path`` in ``file_format`` (a key of ``FORMATS``), atomically."""
    writer = FORMATS[file_format].write
    with atomic_file(path) as out:
        writer(mesh, out, name)


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file opened for writing that appears at ``path`` only once it is complete."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as out:
            yield out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _ascii_name(name: str) -> str:
    cleaned = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name)
    return cleaned or "part"


_3MF_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="model" '
    b'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>\n'
)
_3MF_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    b'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>\n'
)
_3MF_MODEL_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<model unit="millimeter" xml:lang="en-US" '
    b'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
    b'<resources><object id="1" type="model"><mesh><vertices>'
)
_3MF_MODEL_TAIL = (
    b'</triangles></mesh></object></resources><build><item objectid="1"/></build></model>\n'
)
