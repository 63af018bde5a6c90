/* Undo history of a drawing document: a bounded list of JSON snapshots and a cursor.
 *
 * Commits that carry the same coalesce key within `coalesceMs` (typing a note, one letter at a
 * time) replace each other, so one undo takes back the whole burst.
 */
export class History {
  constructor({ limit = 300, coalesceMs = 1500 } = {}) {
    this.limit = limit;
    this.coalesceMs = coalesceMs;
    this.reset(null);
  }

  /** Start afresh from `snapshot`: nothing to undo or redo. */
  reset(snapshot) {
    this.states = snapshot == null ? [] : [snapshot];
    this.index = this.states.length - 1;
    this.last = { key: null, at: 0 };
  }

  commit(snapshot, coalesce = null) {
    const now = Date.now();
    const burst = coalesce && this.last.key === coalesce && now - this.last.at < this.coalesceMs;
    if (burst && this.index === this.states.length - 1) {
      this.states[this.index] = snapshot;
    } else {
      this.states.splice(this.index + 1);
      this.states.push(snapshot);
      if (this.states.length > this.limit) this.states.shift();
      this.index = this.states.length - 1;
    }
    this.last = { key: coalesce, at: now };
  }

  get canUndo() {
    return this.index > 0;
  }

  get canRedo() {
    return this.index < this.states.length - 1;
  }

  /** The snapshot to go back to, or null. */
  undo() {
    return this.canUndo ? this._move(this.index - 1) : null;
  }

  /** The snapshot to go forward to, or null. */
  redo() {
    return this.canRedo ? this._move(this.index + 1) : null;
  }

  _move(index) {
    this.index = index;
    this.last = { key: null, at: 0 };
    return this.states[index];
  }
}
