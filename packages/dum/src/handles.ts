import { StaleHandleError } from './errors.ts';

/** Anything a handle can point at. */
export interface Handled {
  readonly handleId: number;
}

/**
 * Hands out ids for usages and looks them up; a usage removes itself when it ends, after
 * which its handles report `isValid() === false`.
 */
export class HandleManager {
  private next = 1;
  private readonly live = new Map<number, Handled>();

  /** @internal */
  allocate(): number {
    return this.next++;
  }

  /** @internal */
  register(h: Handled): void {
    this.live.set(h.handleId, h);
  }

  /** @internal */
  release(id: number): void {
    this.live.delete(id);
    if (this.live.size === 0 && this.waiters.length > 0)
      for (const w of this.waiters.splice(0)) w();
  }

  private readonly waiters: (() => void)[] = [];

  /** Resolves once no usage is alive. */
  whenEmpty(): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Every live usage. */
  all(): Handled[] {
    return [...this.live.values()];
  }

  get(id: number): Handled | undefined {
    return this.live.get(id);
  }

  /** Usages alive. */
  get size(): number {
    return this.live.size;
  }
}

/**
 * What applications hold instead of a usage. `isValid()` tells whether the usage still
 * exists; `get()` returns it, or throws `StaleHandleError` when it has ended.
 */
export class Handle<T extends Handled> {
  readonly id: number;
  private readonly manager: HandleManager;
  private readonly what: string;

  constructor(manager: HandleManager, id: number, what: string) {
    this.manager = manager;
    this.id = id;
    this.what = what;
  }

  isValid(): boolean {
    return this.manager.get(this.id) !== undefined;
  }

  get(): T {
    const h = this.manager.get(this.id);
    if (h === undefined) throw new StaleHandleError(`${this.what} #${this.id}`);
    return h as T;
  }
}
