// "Did you mean X?" for a user's typo: an unknown key, enum value, command or flag is compared
// with the known ones by edit distance (optimal string alignment: a swap of two neighbours is
// one edit, as in `defualt`). Case, `-` and `_` are ignored, so `latency-ms` finds `latencyMs`.

function normalize(s: string): string {
  return s.toLowerCase().replace(/[-_]/g, '');
}

/** Edits (insert, delete, substitute, swap neighbours) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((d[i - 1]?.[j] ?? 0) + 1, (d[i]?.[j - 1] ?? 0) + 1, (d[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, (d[i - 2]?.[j - 2] ?? 0) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return d[a.length]?.[b.length] ?? 0;
}

/**
 * The known word closest to `input`, when it is close enough to be a typo of it (at most one
 * edit in three characters, at least one); undefined otherwise. Ties go to the first listed.
 */
export function didYouMean(input: string, known: readonly string[]): string | undefined {
  const x = normalize(input);
  if (x === '') return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    if (k === input) continue;
    const dist = editDistance(x, normalize(k));
    if (dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(x.length / 3)) ? best : undefined;
}
