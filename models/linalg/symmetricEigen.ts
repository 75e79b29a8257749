/**
 * Eigen-decomposition of a real symmetric matrix by cyclic Jacobi rotations: small dense matrices
 * (the Gram matrices of a few hundred frames at most), exact to round-off, deterministic.
 */

/**
 * `a`: n×n, row-major, symmetric (only read, not changed). Returns the eigenvalues in descending
 * order and their unit eigenvectors as rows: `vectors[r * n + k]` is component k of the r-th.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (!Number.isInteger(n) || n < 0 || a.length !== n * n) throw new TypeError(`symmetricEigen: a ${n}×${n} matrix expected, got ${a.length} values`);
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q]! - A[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!, akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!, aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!, vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => A[j * n + j]! - A[i * n + i]!);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((col, r) => {
    values[r] = A[col * n + col]!;
    for (let k = 0; k < n; k++) vectors[r * n + k] = V[k * n + col]!;
  });
  return { values, vectors };
}
