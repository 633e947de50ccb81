/**
 * In-process fan-out of changed read rows to graphql-ws subscribers. A change is loaded from
 * the read tables once per API instance and pushed to every interested subscriber; each
 * subscriber has a bounded queue so one slow client cannot grow memory without limit.
 */
const MAX_QUEUE = 1000;

class Channel<T> implements AsyncIterableIterator<T> {
  /** Rows not yet taken, by key, in the order they were published (a Map keeps its insertion order). */
  private readonly queue = new Map<string, T>();
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;

  constructor(
    private readonly accept: (value: T) => boolean,
    private readonly onClose: () => void,
  ) {}

  push(key: string, value: T): void {
    if (this.done || !this.accept(value)) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value, done: false });
      return;
    }
    // A row still waiting gives way to its newer state, queued last: rows are snapshots, and the
    // queue stays in the order they were published (a subscriber resuming from the last row it
    // took misses none). Past MAX_QUEUE different rows, the oldest goes.
    if (!this.queue.delete(key) && this.queue.size >= MAX_QUEUE) this.queue.delete(this.queue.keys().next().value!);
    this.queue.set(key, value);
  }

  next(): Promise<IteratorResult<T>> {
    const first = this.queue.entries().next();
    if (!first.done) {
      this.queue.delete(first.value[0]);
      return Promise.resolve({ value: first.value[1], done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.done) {
      this.done = true;
      this.queue.clear();
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
      this.onClose();
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

const ALL = "*";

/** Subscribers by key; a value is published to the subscribers of each of its keys and of "*". */
export class Topic<T> {
  private readonly byKey = new Map<string, Set<Channel<T>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** keys undefined: everything published on this topic. `accept` filters per subscriber (authorization). */
  subscribe(keys: string[] | undefined, accept: (value: T) => boolean = () => true): AsyncIterableIterator<T> {
    const wanted = keys && keys.length > 0 ? [...new Set(keys)] : [ALL];
    const channel: Channel<T> = new Channel<T>(accept, () => {
      for (const key of wanted) {
        const set = this.byKey.get(key);
        set?.delete(channel);
        if (set?.size === 0) this.byKey.delete(key);
      }
      this.count -= 1;
    });
    for (const key of wanted) {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(channel);
    }
    this.count += 1;
    return channel;
  }

  publish(key: string, value: T): void {
    for (const channel of this.byKey.get(key) ?? []) channel.push(key, value);
    for (const channel of this.byKey.get(ALL) ?? []) channel.push(key, value);
  }

  /** The keys someone subscribed to; `all` when someone takes everything published. */
  subscribedKeys(): { all: boolean; keys: string[] } {
    return { all: this.byKey.has(ALL), keys: [...this.byKey.keys()].filter((k) => k !== ALL) };
  }

  hasSubscribers(key: string): boolean {
    return this.byKey.has(key) || this.byKey.has(ALL);
  }

  closeAll(): void {
    const channels = new Set([...this.byKey.values()].flatMap((s) => [...s]));
    for (const channel of channels) void channel.return();
  }
}
