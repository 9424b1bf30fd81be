/** Binary min-heap of (at, id), ordered by `at` then `id`; stale entries are skipped by the caller. */
export class MinHeap {
  private readonly ats: number[] = [];
  private readonly ids: string[] = [];

  get size(): number {
    return this.ats.length;
  }

  private less(i: number, j: number): boolean {
    const a = this.ats[i] as number;
    const b = this.ats[j] as number;
    if (a !== b) return a < b;
    return (this.ids[i] as string) < (this.ids[j] as string);
  }

  private swap(i: number, j: number): void {
    const a = this.ats[i] as number;
    this.ats[i] = this.ats[j] as number;
    this.ats[j] = a;
    const s = this.ids[i] as string;
    this.ids[i] = this.ids[j] as string;
    this.ids[j] = s;
  }

  push(at: number, id: string): void {
    this.ats.push(at);
    this.ids.push(id);
    let i = this.ats.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  peekAt(): number | undefined {
    return this.ats[0];
  }

  pop(): { at: number; id: string } | undefined {
    const n = this.ats.length;
    if (n === 0) return undefined;
    const top = { at: this.ats[0] as number, id: this.ids[0] as string };
    const lastAt = this.ats.pop() as number;
    const lastId = this.ids.pop() as string;
    if (n > 1) {
      this.ats[0] = lastAt;
      this.ids[0] = lastId;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n - 1 && this.less(l, m)) m = l;
        if (r < n - 1 && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.ats.length = 0;
    this.ids.length = 0;
  }
}
