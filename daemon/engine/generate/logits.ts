// Small numeric helpers over one row of logits. Ties resolve to the lowest id, like torch.argmax.

export function argmax(row: Float32Array): number {
  let best = 0;
  let bestValue = row[0];
  for (let i = 1; i < row.length; i++) {
    if (row[i] > bestValue) {
      bestValue = row[i];
      best = i;
    }
  }
  return best;
}

/** The k largest entries, largest first (ties: lower id first). */
export function topK(row: Float32Array, k: number): { ids: number[]; values: number[] } {
  const n = Math.min(k, row.length);
  const ids: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (ids.length === n && !(v > values[n - 1])) continue;
    let at = ids.length === n ? n - 1 : ids.length;
    if (ids.length < n) {
      ids.push(i);
      values.push(v);
    }
    // Insertion step: move the new entry left past every strictly smaller one.
    while (at > 0 && values[at - 1] < v) {
      ids[at] = ids[at - 1];
      values[at] = values[at - 1];
      at--;
    }
    ids[at] = i;
    values[at] = v;
  }
  return { ids, values };
}

/** log(softmax(row)) computed in float64, written into `out` (float32). */
export function logSoftmax(row: Float32Array, out = new Float32Array(row.length)): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const logSum = max + Math.log(sum);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - logSum;
  return out;
}
