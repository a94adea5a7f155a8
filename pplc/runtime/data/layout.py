"""The data's layout on the mesh: sharded dims padded to a multiple of the device count, masks, PartitionSpecs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jax.sharding import PartitionSpec as P

from ...compiler import ir
from ..devices import mesh as mesh_lib
from ..devices import spmd
from ..devices.mesh import CHAINS_AXIS, DATA_AXIS
from ..program import Program
from .bind import BoundData, dtype_of


# On one device, data this small (bytes, all arrays together) are constants of the programs that use them (the
# sampler's, `LogDensity.value_and_grad`), as a NumPyro model's closure holds its data: XLA folds what depends on
# them alone (a data-only condition's mask, log(sigma) of known sigmas, ...) and a call passes the latents only.
SMALL_DATA_BYTES = 1 << 16


def is_small(data: dict) -> bool:
    """Whether `data` (arrays by name) take at most SMALL_DATA_BYTES in all."""
    return sum(x.nbytes if hasattr(x, "nbytes") else np.asarray(x).nbytes for x in data.values()) <= SMALL_DATA_BYTES


@dataclass(frozen=True)
class Layout:
    """How the data is laid out on the mesh: padded sizes of sharded dims, local sizes, masks."""

    ndev: int
    sizes: dict  # true global sizes
    padded: dict  # sharded dim -> padded global size (a multiple of ndev)

    @property
    def local(self) -> dict:
        return dict(self.sizes, **{d: p // self.ndev for d, p in self.padded.items()})

    def masks(self) -> dict:
        return {d: np.arange(p) < self.sizes[d] for d, p in self.padded.items()}

    def known_masks(self) -> dict:
        """The local masks of the sharded dims that have no padded item (one device, or a size that splits
        evenly): all true on every device, so a program can hold them as constants (NumPy arrays), and the
        generated code then leaves out the selects that masks cost (prelude `masked`, `real_items`)."""
        local = self.local
        return {d: np.ones(local[d], bool) for d, p in self.padded.items() if p == self.sizes[d]}

    def pad(self, x, dims, axis0: int = 0):
        """Pad the sharded dims of `x` (dims start at axis `axis0`) by repeating the last item."""
        x = np.asarray(x)
        for i, d in enumerate(dims):
            if d in self.padded and x.shape[axis0 + i] != self.padded[d]:
                width = [(0, 0)] * x.ndim
                width[axis0 + i] = (0, self.padded[d] - x.shape[axis0 + i])
                x = np.pad(x, width, mode="edge")
        return x

    def unpad(self, x, dims, axis0: int = 0):
        """Drop the padded items of the sharded dims of `x` (dims start at axis `axis0`)."""
        x = np.asarray(x)
        for i, d in enumerate(dims):
            if d in self.padded:
                x = np.take(x, np.arange(self.sizes[d]), axis=axis0 + i)
        return x


def layout(model: ir.Model, sizes: dict, ndev: int) -> Layout:
    """The layout of data of these `sizes` on `ndev` devices: every sharded dim padded to a multiple of `ndev`."""
    padded = {d: -(-sizes[d] // ndev) * ndev for d in model.sharded_dims}
    return Layout(ndev, dict(sizes), padded)


def held_rows(padded: int, ndata: int, positions) -> tuple[int, int]:
    """The items `lo:hi` of a sharded dim padded to `padded` items that the devices at `positions` (a contiguous
    run of places on the mesh's `data` axis of `ndata`) hold: each place holds `padded // ndata` in order."""
    positions = sorted(set(int(p) for p in positions))
    if not positions or positions != list(range(positions[0], positions[-1] + 1)):
        raise ValueError(f"a process's devices must hold a contiguous run of the data axis, not {positions}")
    per = padded // ndata
    return positions[0] * per, (positions[-1] + 1) * per


def read_plan(size: int, lo: int, hi: int) -> tuple[int, int]:
    """The items `a:b` of a dim of `size` true items to read for its padded items `lo:hi`: the true ones among
    them, or (when all are padding, copies of the last item) the last item alone."""
    a = min(lo, size - 1)
    return a, max(min(hi, size), a + 1)


def padded_rows(block, a: int, lo: int, hi: int, axis: int = 0):
    """Padded items `lo:hi` along `axis`, from `block`, the true items `a:` read by `read_plan`: what
    `Layout.pad(whole)` holds there (padding repeats the last true item)."""
    block = np.asarray(block)
    n = block.shape[axis]
    block = np.take(block, np.arange(min(lo - a, n - 1), min(hi - a, n)), axis=axis)  # all padding: the last item
    width = [(0, 0)] * block.ndim
    width[axis] = (0, hi - lo - block.shape[axis])
    return np.pad(block, width, mode="edge") if width[axis][1] else block


def process_positions(mesh, process: int | None = None) -> list[int]:
    """The places on the mesh's `data` axis of the devices of `process` (default: this one)."""
    import jax

    process = jax.process_index() if process is None else process
    axis = list(mesh.axis_names).index(DATA_AXIS)
    return sorted({int(idx[axis]) for idx, d in np.ndenumerate(mesh.devices) if d.process_index == process})


def spec_of(dims, layout: Layout, lead: int = 0, chains_at: int | None = None) -> P:
    """The PartitionSpec of an array whose dims (after `lead` leading ones) are `dims`; the leading dim
    `chains_at` (if given) split over the chain groups."""
    head = [CHAINS_AXIS if i == chains_at else None for i in range(lead)]
    return P(*(head + [DATA_AXIS if d in layout.padded else None for d in dims]))


def on_mesh(program: Program, sizes: dict, ndev: int, groups: int = 1):
    """The mesh of `ndev` devices of this process (asked of JAX first), of every process in a run of several, in
    `groups` chain groups (`mesh_lib.make_mesh`), and the data's layout on it (over the devices of one group,
    the mesh's `data` axis): (mesh, layout)."""
    mesh_lib.request_devices(ndev)
    mesh = mesh_lib.make_mesh(ndev, groups)
    return mesh, layout(program.ir, sizes, int(mesh.shape[DATA_AXIS]))


@dataclass(frozen=True)
class Placement:
    """How a program's arrays go onto a mesh: their PartitionSpecs, padded, and placed (shard_map) or left on
    the host (pmap splits them itself)."""

    program: Program
    layout: Layout
    mesh: object
    mode: str = "shard_map"

    @property
    def shard_axes(self) -> list[str]:
        """The mesh axes sharded sites are split over: none when no dim is sharded."""
        return [DATA_AXIS] if self.layout.padded else []

    @property
    def data_specs(self) -> dict:
        return {v.name: spec_of(v.phys, self.layout) for v in self.program.data_variables}

    @property
    def mask_specs(self) -> dict:
        return {d: P(DATA_AXIS) for d in self.layout.padded}

    @property
    def groups(self) -> int:
        """Chain groups: the size of the mesh's `chains` axis (1 on a one-axis mesh)."""
        return mesh_lib.groups_of(self.mesh) if self.mesh is not None else 1

    def chains_spec(self, lead: int = 1, chains_at: int = 0) -> P:
        """The spec of a per-chain array with `lead` leading dims, chains at `chains_at`: split over the chain
        groups, replicated over a group's devices."""
        return spec_of((), self.layout, lead, chains_at if self.groups > 1 else None)

    def latent_specs(self, lead, chains_at: int | None = None) -> list:
        """The specs of the latents' values, with `lead` leading dims (one count, or one per latent); on a mesh of
        chain groups, the leading dim `chains_at` is split over them."""
        latents = self.program.latents
        leads = [lead] * len(latents) if isinstance(lead, int) else lead
        at = chains_at if self.groups > 1 else None
        return [spec_of(v.phys, self.layout, lead=k, chains_at=at) for v, k in zip(latents, leads)]

    def place(self, tree, specs):
        return spmd.place(tree, specs, self.mesh) if self.mode == "shard_map" else tree

    def data(self, bound: BoundData) -> dict:
        """The data arrays (reals in this run's dtype), padded and placed. Data that hold only this process's
        (padded) rows of the sharded arrays (`rows.LocalData`) become global arrays from those rows alone
        (`jax.make_array_from_process_local_data`)."""
        real = dtype_of("real")
        held = getattr(bound, "held", None) or {}
        data = {v.name: (np.asarray(bound.arrays[v.name], real if v.dtype == "real" else None) if v.name in held
                         else self.layout.pad(np.asarray(bound.arrays[v.name], real if v.dtype == "real" else None),
                                              v.phys))
                for v in self.program.data_variables}
        if not held:
            return self.place(data, self.data_specs)
        import jax
        from jax.sharding import NamedSharding

        specs = self.data_specs
        out = self.place({k: x for k, x in data.items() if k not in held}, {k: specs[k] for k in data if k not in held})
        for v in self.program.data_variables:
            if v.name in held:
                shape = tuple(self.layout.padded.get(d, self.layout.sizes[d]) for d in v.phys)
                out[v.name] = jax.make_array_from_process_local_data(NamedSharding(self.mesh, specs[v.name]),
                                                                     data[v.name], shape)
        return out

    def masks(self) -> dict:
        """The validity masks of the padded dims, placed."""
        return self.place(self.layout.masks(), self.mask_specs)
