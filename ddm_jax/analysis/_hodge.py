"""Data-driven Helmholtz-Hodge split of the probability flow of sampled trajectories.

For activity whose drift is unknown: tessellate the visited region into cells (centres by
furthest-point sampling, a Delaunay complex of the centres), count the transitions of the
trajectories between cells, and split the net (antisymmetric) edge flow
``F_ab = (N_ab - N_ba) / T`` by sparse least squares into a gradient part and a circulating
part. The flow across the face between two cells is a flux, so a gradient flow is
``F = w * (grad s)`` with the discrete Hodge star ``w = |dual face| / |edge|`` (cotangent
weights of the circumcentric dual): s solves the weighted Poisson equation
``grad^T w grad s = grad^T F`` (the two parts have the same divergence), the rest is
divergence-free, and it is the curl part ``curl^T c`` of triangle circulations plus a
harmonic part (zero on the Delaunay complex, which is contractible). The parts are orthogonal
in the inner product weighted by ``1 / w``; the curl fraction is the curl part's share of
``sum F^2 / w``. Without the weights even a uniform flow would show curl on an irregular mesh.
Transitions between cells that are not Delaunay neighbours (a trajectory jumping over a cell
between two saves) lie on no edge; their share is reported and should be small (save more
often or use fewer cells otherwise). NumPy and scipy (``scipy.spatial``, ``scipy.sparse``),
vectorised, for 2 or 3 dimensions (latent read-outs or leading PCA scores of neuron activity).

Validated in 2-d: on relaxing isotropic OU processes the curl fraction follows the continuum
value ``theta^2 / (4 + theta^2)`` within 0.08 (100 cells, 512 trajectories). In 3-d many
Delaunay edges have tiny or negative dual faces (slivers, boundary); with the weights floored
the curl fraction of the analogous 3-d test scatters by 0.2-0.4 from seed to seed (0.15-0.55
for a pure gradient flow), so read 3-d values as qualitative.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from jaxtyping import Array, Float
from scipy.sparse.linalg import lsqr
from scipy.spatial import Delaunay, cKDTree

FLOOR = 0.1  # smallest edge weight, relative to the median (see hodge_split)


def furthest_point_sampling(
    points: Float[Array | np.ndarray, "N d"], num: int, start: int = 0
) -> np.ndarray:
    """Indices of ``num`` points, each the furthest from those chosen before (greedy).

    Deterministic given ``start``; O(num N). Covers the sample evenly, outliers included.
    """
    points = np.asarray(points, dtype=np.float64)
    if not 1 <= num <= points.shape[0]:
        raise ValueError(f"Expected 1 <= num <= {points.shape[0]} (the points); got {num}.")
    chosen = np.empty(num, dtype=np.int64)
    chosen[0] = start
    dist = np.sum((points - points[start]) ** 2, axis=1)
    for i in range(1, num):
        chosen[i] = int(np.argmax(dist))
        dist = np.minimum(dist, np.sum((points - points[chosen[i]]) ** 2, axis=1))
    return chosen


def _simplex_faces(simplices: np.ndarray, size: int) -> np.ndarray:
    """All sorted faces with ``size`` vertices of the simplices, without repeats."""
    d = simplices.shape[1]
    combos = [c for c in np.ndindex(*(d,) * size) if all(c[i] < c[i + 1] for i in range(size - 1))]
    faces = np.sort(np.concatenate([simplices[:, list(c)] for c in combos]), axis=1)
    return np.unique(faces, axis=0)


def _index_of(rows: np.ndarray, table: np.ndarray, num_nodes: int) -> np.ndarray:
    """Position of each row of ``rows`` in the sorted unique ``table`` (-1 where absent)."""
    code = lambda a: np.ravel_multi_index(a.T, (num_nodes,) * a.shape[1])
    keys = code(table)
    q = code(rows)
    pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
    return np.where(keys[pos] == q, pos, -1)


def _hodge_star(points: np.ndarray, simplices: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Weight of each edge, ``|dual face| / |edge|`` (circumcentric duals, cotangent formulas).

    2-d: ``sum (cot alpha) / 2`` over the angles opposite the edge; 3-d: ``sum |kl| cot
    theta_kl / 6`` over the tetrahedra (i, j, k, l), theta_kl the dihedral angle at the
    opposite edge kl. A flux ``w (s_b - s_a)`` is then the discrete form of ``grad s``.
    """
    d, M = points.shape[1], points.shape[0]
    p = points[simplices]
    rows, values = [], []
    for i, j in [(a, b) for a in range(d + 1) for b in range(a + 1, d + 1)]:
        others = [c for c in range(d + 1) if c not in (i, j)]
        if d == 2:
            u, v = p[:, i] - p[:, others[0]], p[:, j] - p[:, others[0]]
            cross = np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])
            values.append(np.sum(u * v, axis=1) / cross / 2)
        else:
            k, m = others
            e = p[:, m] - p[:, k]
            length = np.linalg.norm(e, axis=1)
            e = e / length[:, None]
            a, b = p[:, i] - p[:, k], p[:, j] - p[:, k]
            a = a - np.sum(a * e, axis=1)[:, None] * e
            b = b - np.sum(b * e, axis=1)[:, None] * e
            cot = np.sum(a * b, axis=1) / np.linalg.norm(np.cross(a, b), axis=1)
            values.append(length * cot / 6)
        rows.append(np.sort(simplices[:, [i, j]], axis=1))
    where = _index_of(np.concatenate(rows), edges, M)
    return np.bincount(where, np.concatenate(values), minlength=len(edges))


@dataclass(frozen=True)
class HodgeSplit:
    """A Helmholtz-Hodge split of the net flow between cells.

    Attributes:
        centres: ``(M, d)`` cell centres.
        edges: ``(E, 2)`` Delaunay edges ``a < b``, oriented a -> b.
        triangles: ``(F, 3)`` triangles ``a < b < c`` of the complex.
        flow: ``(E,)`` net transitions a -> b per unit time.
        gradient: ``(E,)`` gradient part ``w (s_b - s_a)``.
        curl: ``(E,)`` curl part.
        harmonic: ``(E,)`` the rest (zero up to solver tolerance on a Delaunay complex).
        potential: ``(M,)`` U = -s (mean zero): the gradient flow runs from high U to low.
        weights: ``(E,)`` the Hodge star w of each edge.
        curl_fraction: ``sum curl^2 / w`` over ``sum flow^2 / w``.
        gradient_fraction: the same for the gradient part.
        unassigned_fraction: share of cell-to-cell transitions not between Delaunay neighbours.
        transitions: number of cell-to-cell transitions counted.
    """

    centres: np.ndarray
    edges: np.ndarray
    triangles: np.ndarray
    flow: np.ndarray
    gradient: np.ndarray
    curl: np.ndarray
    harmonic: np.ndarray
    potential: np.ndarray
    weights: np.ndarray
    curl_fraction: float
    gradient_fraction: float
    unassigned_fraction: float
    transitions: int


def hodge_split(
    trajectories: Float[Array | np.ndarray, "B T d"],
    dt: float,
    *,
    cells: int = 100,
    max_points: int = 50_000,
    tol: float = 1e-10,
) -> HodgeSplit:
    """Split the flow of sampled trajectories between tessellation cells (see module doc).

    Args:
        trajectories: ``(B, T, d)`` states saved every ``dt`` (d = 2 or 3).
        dt: time between saves; the flow is in transitions per unit time.
        cells: number of cells (furthest-point sampled centres).
        max_points: furthest-point sampling runs on an evenly strided subsample of this size.
        tol: relative tolerance of the sparse least-squares solver (LSQR).

    Raises:
        ValueError: for a wrong shape, too few cells, or no transitions between cells.
    """
    traj = np.asarray(trajectories, dtype=np.float64)
    if traj.ndim != 3 or traj.shape[-1] not in (2, 3) or traj.shape[1] < 2:
        raise ValueError(
            "Expected trajectories of shape (B, T, d) with T >= 2 and d = 2 or 3; got "
            f"{traj.shape}."
        )
    B, T, d = traj.shape
    if cells < d + 2:
        raise ValueError(f"Expected at least {d + 2} cells in {d} dimensions; got {cells}.")
    if not np.all(np.isfinite(traj)):
        raise ValueError("Expected finite trajectories; got NaN or infinite states.")
    flat = traj.reshape(-1, d)
    stride = max(1, flat.shape[0] // max_points)
    sub = flat[::stride]
    centres = sub[furthest_point_sampling(sub, min(cells, sub.shape[0]))]
    labels = cKDTree(centres).query(flat)[1].reshape(B, T)

    tri = Delaunay(centres)
    edges = _simplex_faces(tri.simplices, 2)
    triangles = _simplex_faces(tri.simplices, 3)
    M = centres.shape[0]

    src, dst = labels[:, :-1].ravel(), labels[:, 1:].ravel()
    moved = src != dst
    src, dst = src[moved], dst[moved]
    if src.size == 0:
        raise ValueError("Expected transitions between cells; the trajectories never left one.")
    pairs = np.sort(np.stack([src, dst], axis=1), axis=1)
    sign = np.where(src < dst, 1.0, -1.0)
    where = _index_of(pairs, edges, M)
    on_edge = where >= 0
    total_time = B * (T - 1) * dt
    flow = np.bincount(where[on_edge], sign[on_edge], minlength=len(edges)) / total_time

    E = len(edges)
    # Boundary edges opposite obtuse angles get a weight <= 0 (a degenerate dual face); a
    # floor at a tenth of the median keeps the few transitions across them from dominating.
    weight = _hodge_star(centres, tri.simplices, edges)
    weight = np.maximum(weight, FLOOR * np.median(weight))
    grad = sp.csr_matrix(
        (np.r_[-np.ones(E), np.ones(E)], (np.r_[np.arange(E), np.arange(E)], np.r_[edges[:, 0],
         edges[:, 1]])), shape=(E, M),
    )  # fmt: skip
    # boundary of triangle (a, b, c): (a, b) + (b, c) - (a, c)
    tri_edges = np.stack(
        [_index_of(triangles[:, [0, 1]], edges, M), _index_of(triangles[:, [1, 2]], edges, M),
         _index_of(triangles[:, [0, 2]], edges, M)], axis=1,
    )  # fmt: skip
    F = len(triangles)
    curl_adj = sp.csr_matrix(
        (np.tile([1.0, 1.0, -1.0], F), (tri_edges.ravel(), np.repeat(np.arange(F), 3))),
        shape=(E, F),
    )
    # gradient part w (grad s): its divergence is that of the flow (weighted Poisson equation)
    root = np.sqrt(weight)
    s = lsqr(sp.diags(root) @ grad, flow / root, atol=tol, btol=tol, iter_lim=50 * M)[0]
    gradient = weight * (grad @ s)
    rest = flow - gradient  # divergence-free: circulation
    w = lsqr(sp.diags(1 / root) @ curl_adj, rest / root, atol=tol, btol=tol,
             iter_lim=50 * (E + F))[0]  # fmt: skip
    curl = curl_adj @ w
    norm2 = float(np.sum(flow**2 / weight))
    fraction = lambda part: float(np.sum(part**2 / weight)) / norm2 if norm2 > 0 else 0.0
    return HodgeSplit(
        centres=centres,
        edges=edges,
        triangles=triangles,
        flow=flow,
        gradient=gradient,
        curl=curl,
        harmonic=flow - gradient - curl,
        potential=s.mean() - s,
        weights=weight,
        curl_fraction=fraction(curl),
        gradient_fraction=fraction(gradient),
        unassigned_fraction=float(1 - on_edge.mean()),
        transitions=int(src.size),
    )
