import type { DialogUsageManager } from '../dum.ts';
import { DumError } from '../errors.ts';
import { Handle, type Handled } from '../handles.ts';

/** What every usage shares: a handle id, the DUM, and ending once. */
export abstract class BaseUsage implements Handled {
  readonly handleId: number;
  protected readonly dum: DialogUsageManager;
  private ended = false;
  /** The usage's class name; each usage answers it from its prototype (a getter), not a field of its own. */
  abstract readonly kind: string;

  constructor(dum: DialogUsageManager) {
    this.dum = dum;
    this.handleId = dum.handles.allocate();
    dum.handles.register(this);
  }

  /** A handle the application may keep. */
  handle<T extends BaseUsage>(this: T): Handle<T> {
    return new Handle<T>(this.dum.handles, this.handleId, this.kind);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  protected assertLive(): void {
    if (this.ended)
      throw new DumError('SIP_ERR_DUM_STATE', `${this.kind} #${this.handleId} has ended`);
  }

  /**
   * Run an application callback: whatever it throws is logged, never passed on into the
   * DUM's own state changes or the stack.
   */
  protected notify(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.dum.logger.error({ err: e, usage: this.handleId }, `a ${this.kind} handler threw`);
    }
  }

  /** Forget the usage: its handles become stale. */
  protected destroy(): void {
    if (this.ended) return;
    this.ended = true;
    this.dum.handles.release(this.handleId);
  }
}
